package http

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/domain"
)

var jsonMarshal = json.Marshal

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		// A field with no JSON name of its own (nullable's Value) stands
		// for its parent's value: "-" marks it, and pointerOf leaves it out,
		// so a pointer names JSON fields only, never a Go field.
		return strings.SplitN(f.Tag.Get("json"), ",", 2)[0]
	})
	return v
}()

// decodeJSON reads the body strictly: a wrong media type, unknown fields
// (names are case-sensitive), duplicate keys, null where the field cannot be
// null, NUL or invalid UTF-8 in any string, and values beyond the bounds
// (depth, string length, array length, object size) are refused with a 422
// naming the field before any use case runs; then the struct's validate tags
// check its shape.
func decodeJSON(c *fiber.Ctx, dst any) error {
	mediaType, params, err := mime.ParseMediaType(string(c.Request().Header.ContentType()))
	if charset, named := params["charset"]; err != nil || mediaType != fiber.MIMEApplicationJSON || named && !strings.EqualFold(charset, "utf-8") {
		return &httpError{status: fiber.StatusUnsupportedMediaType, code: "unsupported-media-type",
			detail: "send the body as application/json"}
	}
	body := c.Body()
	// The type the body decodes into, not the pointer to it: a body of
	// null would otherwise decode as an empty object.
	if err := scanJSON(body, reflect.TypeOf(dst).Elem()); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &httpError{status: fiber.StatusBadRequest, code: "malformed-json", detail: "the body holds data after the JSON value"}
	}
	return validateStruct(dst)
}

// contentSentKey marks a request that carried content before decoding.
const contentSentKey = "quid.contentSent"

// noBody refuses content sent to an operation that takes none (no
// requestBody in openapi.yaml): such a request was built for some other
// operation or by a confused client, and acting on it would write what the
// client did not mean — a failed request writes nothing. Content is whatever
// the body holds after decoding, of any media type. 415, because the
// operation supports no content at all (RFC 9110 §15.5.16).
func noBody(c *fiber.Ctx) error {
	if len(c.Body()) > 0 || c.Locals(contentSentKey) != nil {
		return &httpError{status: fiber.StatusUnsupportedMediaType, code: "unsupported-media-type",
			detail: "this operation takes no body; send none"}
	}
	return c.Next()
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return &httpError{status: fiber.StatusBadRequest, code: "malformed-json", detail: "the body is empty; a JSON object is expected"}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return &httpError{status: fiber.StatusBadRequest, code: "malformed-json", detail: "the body is not valid JSON: " + err.Error()}
	case errors.As(err, &typeErr):
		// RFC 6901: the whole document is "", not "/" (a key named "").
		ptr := ""
		if typeErr.Field != "" {
			ptr = "/" + strings.ReplaceAll(typeErr.Field, ".", "/")
		}
		return &httpError{status: fiber.StatusUnprocessableEntity, code: "validation-failed", detail: "the request is not valid",
			fields: []problemField{{Pointer: ptr, Detail: fmt.Sprintf("must be of type %s", jsonType(typeErr.Type))}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &httpError{status: fiber.StatusUnprocessableEntity, code: "validation-failed", detail: "the request is not valid",
			fields: []problemField{{Pointer: "/" + name, Detail: "is not a known field"}}}
	}
	return &httpError{status: fiber.StatusBadRequest, code: "malformed-json", detail: "the body is not valid JSON"}
}

func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

func validateStruct(dst any) error {
	err := validate.Struct(dst)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return nil
	}
	he := &httpError{status: fiber.StatusUnprocessableEntity, code: "validation-failed", detail: "the request is not valid"}
	for _, fe := range verrs {
		he.fields = append(he.fields, problemField{Pointer: pointerOf(fe.Namespace()), Detail: reasonOf(fe)})
	}
	return he
}

// pointerOf turns validator's "req.items[0].category" into "/items/0/category".
func pointerOf(namespace string) string {
	parts := strings.Split(namespace, ".")[1:]
	var b strings.Builder
	for _, p := range parts {
		name, idx, hasIdx := strings.Cut(p, "[")
		if name != "-" {
			b.WriteString("/" + name)
		}
		if hasIdx {
			b.WriteString("/" + strings.TrimSuffix(idx, "]"))
		}
	}
	return b.String()
}

func reasonOf(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		// Absent and null read alike here: say both, so a client that sent
		// null learns that null is not a value for this field.
		if t := fe.Type(); t != nil && (t.Kind() == reflect.Bool || t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool) {
			return "is required: true or false (null is not a value)"
		}
		return "is required and must not be null"
	case "min":
		return "must be at least " + fe.Param()
	case "max":
		return "must be at most " + fe.Param()
	case "gte":
		return "must be at least " + fe.Param()
	case "lte":
		return "must be at most " + fe.Param()
	case "uuid", "uuid4":
		return "must be a UUID"
	case "url", "http_url":
		return "must be an http(s) URL"
	case "iso3166_1_alpha2":
		return "must be an ISO 3166-1 alpha-2 country code"
	case "oneof":
		return "must be one of: " + fe.Param()
	case "dive":
		return "is not valid"
	}
	return "fails the " + fe.Tag() + " rule"
}

// Bounds of every JSON body, on top of the body size limit. A field's own
// validate "max" tag replaces the default length of its strings or arrays.
const (
	maxJSONDepth   = 16
	maxStringRunes = 500
	maxArrayItems  = 200
	maxObjectKeys  = 100
	maxKeyBytes    = 128
)

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// scanJSON walks the body token by token beside the Go type it is decoded
// into and refuses, with a 422 naming the JSON pointer, what encoding/json
// would silently accept or read differently from other parsers: duplicate
// keys (at any depth, compared as encoding/json matches them), keys in
// another case, null for a field that cannot be null, NUL or invalid UTF-8
// in keys and strings, and anything beyond the bounds above. Syntax errors
// are left to the decoder that follows.
func scanJSON(body []byte, t reflect.Type) error {
	s := &jsonScan{dec: json.NewDecoder(bytes.NewReader(body)), body: body}
	s.dec.UseNumber()
	err := s.value(t, "", fieldRules{}, 1)
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	return nil
}

type jsonScan struct {
	dec  *json.Decoder
	body []byte
}

// fieldRules are the bounds a struct field's validate tag sets.
type fieldRules struct {
	max  int    // max= before any dive: runes of a string, items of an array
	elem string // the tag after dive, for the elements
}

func rulesOf(tag string) fieldRules {
	container, elem, _ := strings.Cut(tag, "dive")
	r := fieldRules{elem: strings.TrimPrefix(elem, ",")}
	for _, part := range strings.Split(container, ",") {
		if v, ok := strings.CutPrefix(part, "max="); ok {
			r.max, _ = strconv.Atoi(v)
		}
	}
	return r
}

func (s *jsonScan) token() (json.Token, []byte, error) {
	start := s.dec.InputOffset()
	tok, err := s.dec.Token()
	return tok, s.body[start:s.dec.InputOffset()], err
}

func (s *jsonScan) value(t reflect.Type, ptr string, rules fieldRules, depth int) error {
	if depth > maxJSONDepth {
		return invalidInput(ptr, fmt.Sprintf("nests deeper than %d levels", maxJSONDepth))
	}
	tok, raw, err := s.token()
	if err != nil {
		return err
	}
	nullable, t := nullability(t)
	if err := checkKind(t, ptr, tok); err != nil {
		return err
	}
	switch v := tok.(type) {
	case nil:
		if !nullable {
			return invalidInput(ptr, "must not be null")
		}
	case string:
		limit := maxStringRunes
		if rules.max > 0 {
			limit = rules.max
		}
		return checkString(ptr, v, raw, limit)
	case json.Delim:
		if v == '{' {
			return s.object(t, ptr, depth)
		}
		return s.array(t, ptr, rules, depth)
	}
	return nil
}

// checkKind refuses a JSON value of another type than the Go type it is
// decoded into, naming its exact pointer: encoding/json reports such an
// error with the field path but without array indices ("/items/category"
// for the second item's category), which names no field at all. An
// integer must be a whole number its type can hold. t is nil when anything
// goes (an interface, or a type that decodes itself).
func checkKind(t reflect.Type, ptr string, tok json.Token) error {
	if t == nil || tok == nil {
		return nil
	}
	ok := true
	switch v := tok.(type) {
	case string:
		ok = t.Kind() == reflect.String
	case bool:
		ok = t.Kind() == reflect.Bool
	case json.Number:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			_, err := strconv.ParseInt(v.String(), 10, t.Bits())
			ok = err == nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			_, err := strconv.ParseUint(v.String(), 10, t.Bits())
			ok = err == nil
		case reflect.Float32, reflect.Float64:
			_, err := strconv.ParseFloat(v.String(), t.Bits())
			ok = err == nil
		default:
			ok = false
		}
	case json.Delim:
		switch v {
		case '{':
			ok = t.Kind() == reflect.Struct || t.Kind() == reflect.Map
		case '[':
			ok = t.Kind() == reflect.Slice || t.Kind() == reflect.Array
		}
	}
	if !ok {
		return invalidInput(ptr, "must be of type "+jsonType(t))
	}
	return nil
}

// nullability tells whether JSON null is a meaningful value for t, and the
// type to check the value against (nil: any shape, only the bounds apply).
func nullability(t reflect.Type) (bool, reflect.Type) {
	if t == nil {
		return true, nil
	}
	nullable := false
	for t.Kind() == reflect.Pointer {
		nullable, t = true, t.Elem()
	}
	if n, ok := reflect.Zero(t).Interface().(interface{ nullableElem() reflect.Type }); ok {
		return true, n.nullableElem()
	}
	if t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return true, nil
	}
	return nullable, t
}

func (s *jsonScan) object(t reflect.Type, ptr string, depth int) error {
	var fields map[string]reflect.StructField
	var elem reflect.Type
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = jsonFields(t, nil)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for n := 0; s.dec.More(); n++ {
		tok, raw, err := s.token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		kptr := ptr + "/" + domain.PointerToken(key)
		if err := checkString(kptr, key, raw, maxKeyBytes); err != nil {
			return err
		}
		if n == maxObjectKeys {
			return invalidInput(ptr, fmt.Sprintf("must have at most %d members", maxObjectKeys))
		}
		// encoding/json matches struct fields regardless of case, so two keys
		// differing only in case would name the same field.
		fold := key
		if fields != nil {
			fold = strings.ToLower(key)
		}
		if seen[fold] {
			return invalidInput(kptr, "appears more than once")
		}
		seen[fold] = true
		vt, rules := elem, fieldRules{}
		if fields != nil {
			f, ok := fields[key]
			if !ok {
				return invalidInput(kptr, "is not a known field")
			}
			vt, rules = f.Type, rulesOf(f.Tag.Get("validate"))
		}
		if err := s.value(vt, kptr, rules, depth+1); err != nil {
			return err
		}
	}
	_, _, err := s.token()
	return err
}

func (s *jsonScan) array(t reflect.Type, ptr string, rules fieldRules, depth int) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	limit := maxArrayItems
	if rules.max > 0 {
		limit = rules.max
	}
	elemRules := rulesOf(rules.elem)
	for i := 0; s.dec.More(); i++ {
		if i == limit {
			return invalidInput(ptr, fmt.Sprintf("must have at most %d items", limit))
		}
		if err := s.value(elem, ptr+"/"+strconv.Itoa(i), elemRules, depth+1); err != nil {
			return err
		}
	}
	_, _, err := s.token()
	return err
}

// jsonFields are a struct's JSON names, with embedded structs flattened.
func jsonFields(t reflect.Type, into map[string]reflect.StructField) map[string]reflect.StructField {
	if into == nil {
		into = map[string]reflect.StructField{}
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			jsonFields(f.Type, into)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		into[name] = f
	}
	return into
}

// checkString refuses what PostgreSQL text cannot hold or another reader
// would see differently: invalid UTF-8 (raw, or an escaped lone surrogate
// that encoding/json turns into U+FFFD), NUL, and strings over the limit.
func checkString(ptr, v string, raw []byte, limit int) error {
	switch {
	case !utf8.Valid(raw):
		return invalidInput(ptr, "must be valid UTF-8")
	case strings.IndexByte(v, 0) >= 0:
		return invalidInput(ptr, "must not contain the NUL character")
	case strings.ContainsRune(v, utf8.RuneError) && !bytes.Contains(raw, []byte("\uFFFD")) &&
		!bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)):
		return invalidInput(ptr, "must be valid UTF-8 (no lone surrogate escapes)")
	case utf8.RuneCountInString(v) > limit:
		return invalidInput(ptr, fmt.Sprintf("must be at most %d characters", limit))
	}
	return nil
}

// decodeContent undoes the request's Content-Encoding once, at the edge,
// with the body limit applied to the decoded bytes, and leaves the plain
// body in place: c.Body() never inflates anything afterwards. Codings other
// than gzip and deflate are refused with 415.
func decodeContent(c *fiber.Ctx, limit int) error {
	var codings []string
	c.Request().Header.VisitAll(func(key, value []byte) {
		if strings.EqualFold(string(key), fiber.HeaderContentEncoding) {
			for _, coding := range strings.Split(string(value), ",") {
				if coding = strings.ToLower(strings.TrimSpace(coding)); coding != "" && coding != "identity" {
					codings = append(codings, coding)
				}
			}
		}
	})
	body := c.Request().Body()
	if len(body) > 0 {
		// Whether content was sent at all, even content that decodes to
		// nothing: an operation that takes no body refuses it (noBody).
		c.Locals(contentSentKey, true)
	}
	if len(codings) == 0 {
		return nil
	}
	if len(codings) > 2 {
		return unsupportedCoding(c, "at most two content codings are accepted")
	}
	for _, coding := range codings {
		if coding != "gzip" && coding != "x-gzip" && coding != "deflate" {
			return unsupportedCoding(c, "the content coding "+strconv.Quote(coding)+" is not supported; send gzip, deflate or none")
		}
	}
	if len(body) == 0 {
		c.Request().Header.Del(fiber.HeaderContentEncoding)
		return nil
	}
	for i := len(codings) - 1; i >= 0; i-- {
		var r io.Reader
		var err error
		// The decoders read a bytes.Reader byte by byte (it is an
		// io.ByteReader, so they add no buffer), so what it still holds
		// afterwards is data after the stream: refused, or a proxy that
		// inspects the raw bytes would judge other content than Quid uses.
		encoded := bytes.NewReader(body)
		if codings[i] == "deflate" {
			r, err = zlib.NewReader(encoded)
		} else {
			r, err = gzip.NewReader(encoded)
		}
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(r, int64(limit)+1))
		}
		if err == nil && encoded.Len() > 0 && len(body) <= limit {
			err = errors.New("data after the stream")
		}
		if err != nil {
			return &httpError{status: fiber.StatusBadRequest, code: "malformed-body",
				detail: "the body is not valid " + codings[i] + " data"}
		}
		if len(body) > limit {
			return &httpError{status: fiber.StatusRequestEntityTooLarge, code: "request-entity-too-large",
				detail: fmt.Sprintf("the body expands beyond %d bytes", limit)}
		}
	}
	c.Request().SetBodyRaw(body)
	c.Request().Header.Del(fiber.HeaderContentEncoding)
	return nil
}

func unsupportedCoding(c *fiber.Ctx, detail string) error {
	c.Set(fiber.HeaderAcceptEncoding, "gzip, deflate")
	return &httpError{status: fiber.StatusUnsupportedMediaType, code: "unsupported-content-encoding", detail: detail}
}
