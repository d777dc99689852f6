package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/quidpro/quid/app"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	quid "github.com/quidpro/quid"
)

// The hostile input table of issue 9: every JSON body field and every query
// parameter openapi.yaml declares gets the same hostile values, so a field
// or parameter added to the document is attacked without a change here.
// Each refusal is a 4xx problem+json naming the field (the JSON pointer, or
// the query parameter) and writes nothing; a value that is legitimately
// data (SQL or HTML metacharacters in free text) is accepted verbatim.

var (
	specDocOnce sync.Once
	specDocVal  *openapi3.T
	specDocErr  error
)

// specDoc is openapi.yaml loaded by kin-openapi, as the harness loads it.
func specDoc(t testing.TB) *openapi3.T {
	t.Helper()
	specDocOnce.Do(func() {
		specDocVal, specDocErr = openapi3.NewLoader().LoadFromData(quid.OpenAPI)
		if specDocErr == nil {
			specDocErr = specDocVal.Validate(context.Background())
		}
	})
	if specDocErr != nil {
		t.Fatalf("openapi.yaml: %v", specDocErr)
	}
	return specDocVal
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// fiberPath is an openapi.yaml path as the router names it.
func fiberPath(p string) string { return pathParam.ReplaceAllString(p, ":$1") }

// requestBodySchemas maps each operation with a JSON request body
// ("PATCH /v1/contracts/:id") to its schema.
func requestBodySchemas(t testing.TB) map[string]*openapi3.Schema {
	out := map[string]*openapi3.Schema{}
	for path, item := range specDoc(t).Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
				out[method+" "+fiberPath(path)] = mt.Schema.Value
			}
		}
	}
	return out
}

// schemaAt is the schema of the value at one step below s (a property, an
// array item, or a free-form map's value); nil when the document leaves it
// free-form.
func schemaAt(s *openapi3.Schema, token string) *openapi3.Schema {
	if s == nil {
		return nil
	}
	if p := s.Properties[token]; p != nil {
		return p.Value
	}
	for _, all := range s.AllOf {
		if sub := schemaAt(all.Value, token); sub != nil {
			return sub
		}
	}
	if _, err := strconv.Atoi(token); err == nil && s.Items != nil {
		return s.Items.Value
	}
	if s.AdditionalProperties.Schema != nil {
		return s.AdditionalProperties.Schema.Value
	}
	return nil
}

func schemaForPointer(root *openapi3.Schema, ptr string) *openapi3.Schema {
	s := root
	for _, tok := range strings.Split(ptr, "/")[1:] {
		s = schemaAt(s, tok)
	}
	return s
}

// schemaFields lists every property pointer the schema declares (array
// items as index 0), for checking that the samples give each a value.
func schemaFields(s *openapi3.Schema, ptr string, out *[]string) {
	if s == nil || len(*out) > 500 {
		return
	}
	for name, p := range s.Properties {
		*out = append(*out, ptr+"/"+name)
		schemaFields(p.Value, ptr+"/"+name, out)
	}
	if s.Items != nil && s.Items.Value != nil && len(s.Items.Value.Properties) > 0 {
		schemaFields(s.Items.Value, ptr+"/0", out)
	}
}

// mayBeNull says whether the schema at a pointer accepts null (free-form
// values, such as attributes, may: null removes an attribute).
func mayBeNull(s *openapi3.Schema) bool {
	return s == nil || s.Nullable || s.Type != nil && s.Type.Includes("null")
}

// freeText is a string schema with a length cap and no enum, pattern,
// format or const (a title, a name, a reference): any text within its
// length is data, SQL and HTML included. Strings without a cap are keys
// and ids (a catalogue key, a recipient id), which name something that
// must exist.
func freeText(s *openapi3.Schema) bool {
	return s != nil && s.Type != nil && s.Type.Includes("string") && s.MaxLength != nil && len(s.Enum) == 0 &&
		s.Pattern == "" && s.Format == "" && s.Const == nil
}

const (
	sqlMeta  = `x'; DROP TABLE members; -- " OR 1=1 /* \ %_`
	htmlMeta = `<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'`
)

// hostileCase is one row of the body table: a mutation at a pointer and
// what must come of it.
type hostileCase struct {
	name    string
	m       mutation
	pointer string // the field the 422 must name ("" for the document, "-" for any)
	status  int    // the refusal's status; 0 when the value may be data (see acceptable)
	plain   string // for acceptable values: the text that must round-trip verbatim
}

// hostileBodyCases are the table's rows for one body.
func hostileBodyCases(root *openapi3.Schema, sample map[string]any) []hostileCase {
	var cases []hostileCase
	add := func(name, ptr string, value string, status int, pointer string) {
		cases = append(cases, hostileCase{name: name + " at " + ptr, m: mutation{at: ptr, value: func(any) string { return value }}, pointer: pointer, status: status})
	}
	pointers(sample, "", func(ptr string, v any) {
		s := schemaForPointer(root, ptr)
		switch x := v.(type) {
		case string:
			add("NUL", ptr, `"a\u0000b"`, 422, ptr)
			add("invalid UTF-8", ptr, "\"a\xff\xfeb\"", 422, ptr)
			add("a lone surrogate", ptr, `"a\ud800b"`, 422, ptr)
			add("10,000 characters", ptr, `"`+strings.Repeat("é", 10000)+`"`, 422, ptr)
			add("a number for a string", ptr, "12345", 422, ptr)
			// A value the document's pattern refuses is refused: the
			// sample with a line break or a space in the middle.
			if s != nil && s.Pattern != "" {
				re := regexp.MustCompile(s.Pattern)
				for _, insert := range []string{"\n", " "} {
					broken := x[:len(x)/2] + insert + x[len(x)/2:]
					if !re.MatchString(broken) {
						raw, _ := json.Marshal(broken)
						add(fmt.Sprintf("%q inside a patterned value", insert), ptr, string(raw), 422, ptr)
					}
				}
			}
			for _, meta := range []string{sqlMeta, htmlMeta} {
				raw, _ := json.Marshal(meta)
				cases = append(cases, hostileCase{name: "metacharacters " + meta[:8] + " at " + ptr,
					m: mutation{at: ptr, value: func(any) string { return string(raw) }}, pointer: ptr, plain: meta})
			}
		case float64:
			if s != nil && s.Type != nil && s.Type.Is("integer") {
				add("a float for an integer", ptr, "1.5", 422, ptr)
				add("an integer beyond int64", ptr, "9223372036854775808", 422, ptr)
				if s.Min != nil && *s.Min >= 0 {
					add("a negative number", ptr, "-1", 422, ptr)
				}
			}
			add("a huge number", ptr, "1"+strings.Repeat("0", 400), 422, ptr)
			add("a string for a number", ptr, `"1"`, 422, ptr)
		case bool:
			add("a string for a boolean", ptr, `"true"`, 422, ptr)
		case []any:
			if len(x) > 0 {
				one, _ := json.Marshal(x[0])
				if len(one) > 40 { // 10,000 large items would pass the body limit, a refusal of another kind
					one = []byte("{}")
				}
				add("10,000 items", ptr, "["+strings.TrimSuffix(strings.Repeat(string(one)+",", 10000), ",")+"]", 422, ptr)
			}
			add("an object for an array", ptr, "{}", 422, ptr)
		case map[string]any:
			cases = append(cases, hostileCase{name: "150 extra members at " + ptr, m: mutation{at: ptr, extra: 150}, pointer: "-", status: 422})
			add("an array for an object", ptr, "[]", 422, ptr)
		}
		add("deep nesting", ptr, strings.Repeat("[", 200)+strings.Repeat("]", 200), 422, "-")
		if !mayBeNull(s) {
			add("null", ptr, "null", 422, ptr)
		}
		if !isIndex(ptr) {
			cases = append(cases, hostileCase{name: "duplicate key at " + ptr, m: mutation{at: ptr, key: func(k string) []string { return []string{k, k} }}, pointer: ptr, status: 422})
			if !strings.HasPrefix(ptr, "/attributes/") && strings.ToUpper(ptr) != ptr {
				i := strings.LastIndex(ptr, "/") + 1
				upper := ptr[:i] + strings.ToUpper(ptr[i:])
				cases = append(cases,
					hostileCase{name: "key in another case at " + ptr, m: mutation{at: ptr, key: func(k string) []string { return []string{strings.ToUpper(k)} }}, pointer: upper, status: 422},
					hostileCase{name: "key twice in two cases at " + ptr, m: mutation{at: ptr, key: func(k string) []string { return []string{k, strings.ToUpper(k)} }}, pointer: upper, status: 422})
			}
		}
	})
	whole := func(name, body, pointer string) {
		cases = append(cases, hostileCase{name: name, m: mutation{at: "", value: func(any) string { return body }}, pointer: pointer, status: 422})
	}
	cases = append(cases, hostileCase{name: "150 extra members at the root", m: mutation{at: "", extra: 150}, pointer: "-", status: 422})
	whole("deep nesting at the root", strings.Repeat(`{"a":`, 200)+"1"+strings.Repeat("}", 200), "-")
	whole("an array of 10,000 bodies", "["+strings.TrimSuffix(strings.Repeat("{},", 10000), ",")+"]", "")
	whole("null as the body", "null", "")
	whole("a huge number as the body", "1"+strings.Repeat("0", 400), "")
	return cases
}

// hostileRoute makes a body route real in a world: its ids point at the
// world's contract, draft, exchange and recipients, and its caller is the
// world's principal of that role, so the sample is accepted or refused for
// a reason of the domain, not for a missing id.
func hostileRoute(a *api, w world, r bodyRoute, key string) bodyRoute {
	f := w.f
	byRole := map[string]string{"admin": f.admin, "marketer": f.marketer, "member": f.member, "partner": f.partner}
	role, _ := roleAndSub(a.t, r.token)
	r.token = byRole[role]
	if strings.HasPrefix(key, "PATCH /v1/contracts/") {
		r.path = strings.Replace(r.path, zeroUUID, w.draft, 1)
	} else if strings.HasPrefix(key, "PATCH /v1/rewards/") {
		r.path = strings.Replace(r.path, zeroUUID, a.createReward(f, nil), 1)
	} else {
		r.path = strings.Replace(r.path, zeroUUID, w.contract, 1)
	}
	raw, _ := json.Marshal(r.sample)
	for _, sub := range [][2]string{ // in order: the named ids first, then any other id is a recipient
		{`"contract_id":"` + zeroUUID, `"contract_id":"` + w.contract}, {`"exchange_id":"` + zeroUUID, `"exchange_id":"` + w.exchange},
		{zeroUUID, f.brand},
	} {
		raw = bytes.ReplaceAll(raw, []byte(sub[0]), []byte(sub[1]))
	}
	r.sample = nil
	if err := json.Unmarshal(raw, &r.sample); err != nil {
		a.t.Fatal(err)
	}
	return r
}

// problemNames says whether a problem's errors name the pointer: "-" any
// field, a body pointer exactly, a query parameter as /query/<name> or as
// /<name>.
func problemNames(body []byte, pointer string) bool {
	var p struct{ Errors []struct{ Pointer string } }
	if json.Unmarshal(body, &p) != nil {
		return false
	}
	for _, e := range p.Errors {
		if pointer == "-" || e.Pointer == pointer {
			return true
		}
	}
	return false
}

// holdsString says whether s appears, as a whole JSON string, in body.
func holdsString(body []byte, s string) bool {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	found := false
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			found = found || x == s
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return found
}

// Every field of every JSON body openapi.yaml declares (and every value of
// a free-form map the samples hold) gets every hostile value its type
// admits, plus whole-body attacks (oversized, gzip and deflate bombs, deep
// nesting, huge arrays): each is a 4xx problem+json naming the field and
// changes no row of any table; SQL and HTML metacharacters are either
// refused the same way or, where the field is free text, stored and
// answered back verbatim.
func TestEveryJSONBodyFieldRefusesHostileValuesNamingTheField(t *testing.T) {
	t.Parallel()
	discover := newAPI(t)
	routes := bodyRoutes(t, discover)
	schemas := requestBodySchemas(t)
	var total, verbatim atomic.Int64
	t.Cleanup(func() {
		t.Logf("%d hostile body cases over %d body routes; %d metacharacter values stored verbatim", total.Load(), len(routes), verbatim.Load())
		if !t.Failed() && verbatim.Load() == 0 {
			t.Error("no metacharacter value was accepted anywhere: the verbatim check never ran")
		}
	})
	for _, r := range routes {
		key := r.method + " " + fiberRoute(discover, r)
		root := schemas[key]
		if root == nil {
			t.Fatalf("%s decodes a JSON body that openapi.yaml does not declare", key)
		}
		sample := normalise(t, r.sample)
		var declared []string
		schemaFields(root, "", &declared)
		for _, ptr := range declared {
			if schemaForPointerIn(sample, ptr) == nil {
				t.Errorf("%s: openapi.yaml declares %s but sampleBodies gives it no value, so no hostile value reaches it", key, ptr)
			}
		}
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			a := newAPI(t)
			w := a.world()
			r := hostileRoute(a, w, bodyRoute{method: r.method, path: r.path, token: r.token, sample: sample}, key)
			send := func(body string, headers map[string]string) response {
				return a.do(req{Method: r.method, Path: r.path, Token: r.token, Body: body, Headers: headers})
			}
			plain, _ := jsonText(r.sample)
			base := send(plain, nil)
			if base.Status >= 500 {
				t.Fatalf("the sample: %d %s", base.Status, base.Body)
			}
			cases := hostileBodyCases(root, r.sample)
			for _, c := range cases {
				var b bytes.Buffer
				encodeWith(r.sample, "", c.m, &b)
				var res response
				if c.status == 0 {
					res = send(b.String(), nil)
					switch {
					case res.Status < 300 && holdsString(res.Body, c.plain):
						verbatim.Add(1)
					case res.Status < 300:
						t.Errorf("%s: %d, but the answer does not hold the value verbatim: %s", c.name, res.Status, res.Body)
					case res.Status == 422 && problemNames(res.Body, c.pointer):
						if base.Status < 300 && freeText(schemaForPointer(root, c.pointer)) {
							t.Errorf("%s: refused, but %s is free text and the sample is accepted: %s", c.name, c.pointer, res.Body)
						}
					case res.Status == base.Status && base.Status >= 400:
					default:
						t.Errorf("%s: %d, want the value stored verbatim or a 422 naming %s: %s", c.name, res.Status, c.pointer, res.Body)
					}
					continue
				}
				a.unchangedBy(key+" "+c.name, func() { res = send(b.String(), nil) })
				if res.Status != c.status || !problemNames(res.Body, c.pointer) {
					t.Errorf("%s: %d, want %d naming %q: %s", c.name, res.Status, c.status, c.pointer, res.Body)
				}
			}
			// Whole-body attacks: bombs that expand past the limit in each
			// accepted coding. (A body over the limit announced by
			// Content-Length is refused before it is read, on every route:
			// TestEveryRouteDeclaresTheEdgeRefusalsItGives.)
			n := len(cases)
			for _, coding := range []string{"gzip", "deflate"} {
				bomb := string(compress(t, coding, io.MultiReader(strings.NewReader(`{"a":`), &zeros{2 << 20})))
				var res response
				a.unchangedBy(key+" "+coding+" bomb", func() { res = send(bomb, map[string]string{"Content-Encoding": coding}) })
				if res.Status != http.StatusRequestEntityTooLarge {
					t.Errorf("a %s bomb: %d, want 413: %.200s", coding, res.Status, res.Body)
				}
				n++
			}
			total.Add(int64(n))
		})
	}
}

// fiberRoute is the router's name of a body route's path ("/v1/contracts/:id").
func fiberRoute(a *api, r bodyRoute) string {
	for _, rt := range a.svc.app.GetRoutes(true) {
		if rt.Method != r.method {
			continue
		}
		path := rt.Path
		for _, p := range rt.Params {
			path = strings.Replace(path, ":"+p, zeroUUID, 1)
		}
		if path == r.path {
			return rt.Path
		}
	}
	a.t.Fatalf("no route for %s %s", r.method, r.path)
	return ""
}

// schemaForPointerIn is the sample's value at a pointer (nil when absent).
func schemaForPointerIn(v any, ptr string) any {
	for _, tok := range strings.Split(ptr, "/")[1:] {
		switch x := v.(type) {
		case map[string]any:
			v = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// validQueryValues are well-formed values of required query parameters,
// so a hostile value of one parameter is judged with the others valid.
var validQueryValues = map[string]string{"purpose": "loyalty.personalised_offers", "from": "2026-01-01", "to": "2026-02-01"}

// hostileQueryValues are the table's rows for one query parameter: the
// raw (already escaped) value, and whether it may be data.
func hostileQueryValues(s *openapi3.Schema) []struct {
	name, raw string
	mayBeData bool
} {
	type row = struct {
		name, raw string
		mayBeData bool
	}
	rows := []row{
		{"NUL", "a%00b", false},
		{"invalid UTF-8", "a%FF%FEb", false},
		{"a lone surrogate in UTF-8", "a%ED%A0%80b", false},
		{"10,000 characters", strings.Repeat("q", 10000), false},
		{"SQL metacharacters", url.QueryEscape(sqlMeta), true},
		{"HTML metacharacters", url.QueryEscape(htmlMeta), true},
	}
	if s != nil && s.Type != nil && s.Type.Is("integer") {
		rows = append(rows, row{"an integer beyond int64", "9223372036854775808", false},
			row{"a huge number", "1e400", false}, row{"a float", "1.5", false}, row{"a negative number", "-1", false},
			row{"zero", "0", s.Min == nil || *s.Min <= 0}, row{"an empty value", "", true})
	}
	if s != nil && len(s.Enum) > 0 {
		rows = append(rows, row{"an enum value in upper case", url.QueryEscape(strings.ToUpper(fmt.Sprint(s.Enum[0]))), false})
	}
	if s != nil && (s.Format == "date-time" || s.Format == "uuid") {
		rows = append(rows, row{"a malformed " + s.Format, "2026-13-45T99%3A00%3A00Z", false})
	}
	return rows
}

// Every query parameter of every operation openapi.yaml declares gets the
// hostile values of the table (and is given twice): each is a 422
// problem+json naming the parameter, or — for metacharacters in a
// parameter that is free text — an ordinary answer; no GET writes.
func TestEveryQueryParameterRefusesHostileValuesNamingIt(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	w := a.world()
	f := w.f
	tokens := []string{"", f.admin, f.marketer, f.member, f.partner}
	doc := specDoc(t)
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	cases, params := 0, 0
	for _, p := range paths {
		for method, op := range doc.Paths.Value(p).Operations() {
			var query []*openapi3.Parameter
			for _, pr := range op.Parameters {
				if pr.Value.In == "query" {
					query = append(query, pr.Value)
				}
			}
			if len(query) == 0 {
				continue
			}
			if method == http.MethodHead {
				continue // answered as the GET beside it
			}
			if method != http.MethodGet {
				t.Fatalf("%s %s has query parameters; this table only knows GETs", method, p)
			}
			path := pathParam.ReplaceAllStringFunc(p, func(m string) string {
				if m == "{member_id}" {
					return "alice"
				}
				return w.contract
			})
			valid := url.Values{}
			for _, q := range query {
				if q.Required {
					v, ok := validQueryValues[q.Name]
					if !ok {
						t.Fatalf("%s %s: required query parameter %s has no value in validQueryValues", method, p, q.Name)
					}
					valid.Set(q.Name, v)
				}
			}
			// The caller: the first principal the route does not refuse (for a
			// web page, the first signed-in browser it shows a page to).
			tok, cookie := "", ""
			if isWebPath(p) {
				for _, role := range []app.Role{app.RoleMember, app.RoleMarketer} {
					cookie = w.session(role, "hostile")
					if r := a.do(withSession(webGet("", path+"?"+valid.Encode()), cookie)); r.Status == 200 {
						break
					}
				}
			}
			for _, candidate := range tokens {
				tok = candidate
				if cookie != "" {
					tok = ""
					break
				}
				if r := a.do(req{Method: method, Path: path + "?" + valid.Encode(), Token: tok}); r.Status != 401 && r.Status != 403 {
					break
				}
			}
			a.unchangedBy(method+" "+p, func() {
				for _, q := range query {
					params++
					others := url.Values{}
					for k, v := range valid {
						if k != q.Name {
							others[k] = v
						}
					}
					prefix := others.Encode()
					if prefix != "" {
						prefix += "&"
					}
					rows := append(hostileQueryValues(q.Schema.Value), struct {
						name, raw string
						mayBeData bool
					}{"given twice", "1&" + q.Name + "=1", false})
					for _, row := range rows {
						cases++
						rq := req{Method: method, Path: path + "?" + prefix + q.Name + "=" + row.raw, Token: tok}
						if cookie != "" {
							rq = withSession(webGet("", rq.Path), cookie)
						}
						r := a.do(rq)
						named := r.Status == 422 && (problemNames(r.Body, "/query/"+q.Name) ||
							isWebPath(p) && strings.Contains(string(r.Body), "<code>/query/"+q.Name+"</code>"))
						if !named && !(row.mayBeData && r.Status < 300) {
							t.Errorf("%s %s?%s=<%s>: %d, want 422 naming %s%s: %.300s", method, p, q.Name, row.name, r.Status, q.Name,
								map[bool]string{true: " or an answer", false: ""}[row.mayBeData], r.Body)
						}
					}
				}
			})
		}
	}
	t.Logf("%d hostile query cases over %d declared query parameters", cases, params)
	if params < 15 {
		t.Fatalf("only %d query parameters found in openapi.yaml", params)
	}
}
