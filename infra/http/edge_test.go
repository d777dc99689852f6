package http

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestFramingProblemNamesEveryAmbiguity(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"Host: a\r\nAccept: */*\r\n\r\n":                                              "",
		"Host: a\r\nX-Tab: a\tb\r\n\r\n":                                              "",
		"Host: a\r\nTransfer-Encoding: Chunked\r\n\r\n":                               "",
		"Host: a\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n":                   "Content-Length",
		"Host: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n":          "Transfer-Encoding",
		"Host: a\r\nTransfer-Encoding: gzip\r\n\r\n":                                  "Transfer-Encoding",
		"Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n": "Transfer-Encoding",
		"Host: a\r\nHost: b\r\n\r\n":                                                  "Host",
		"Host: a\r\nX-A: 1\r2\r\n\r\n":                                                "X-A",
		"Host: a\r\nX-A: 1\x002\r\n\r\n":                                              "X-A",
		"Host: a\r\nX-A: 1\x7f\r\n\r\n":                                               "X-A",
		"Host: a\nX-A: 1\r\n\r\n":                                                     "CRLF",
		"Host: a\r\nX-A: 1\r\n 2\r\n\r\n":                                             "folded",
	} {
		detail, header := framingProblem([]byte(raw), true, true)
		got := strings.TrimSpace(detail + " " + header)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("%q: got %q, want %q", raw, got, want)
		}
	}
}

type scanTarget struct {
	Name  string             `json:"name" validate:"max=5"`
	Count int64              `json:"count"`
	Opt   *int64             `json:"opt"`
	Tags  []string           `json:"tags" validate:"max=2,dive,max=3"`
	Attrs map[string]any     `json:"attrs"`
	Inner *struct{ N int64 } `json:"inner"`
}

func TestScanJSONRefusesWhatEncodingJSONWouldTakeSilently(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[*scanTarget]()
	for body, pointer := range map[string]string{
		`{"name":"abc","count":1,"opt":null,"tags":["a"],"attrs":{"x":null,"y":[1,{"z":"w"}]},"inner":{"N":1}}`: "",
		`{"count":null}`:               "/count",
		`{"name":"a","name":"b"}`:      "/name",
		`{"name":"a","NAME":"b"}`:      "/NAME",
		`{"Name":"a"}`:                 "/Name",
		`{"inner":{"N":1,"N":2}}`:      "/inner/N",
		`{"attrs":{"k":1,"k":2}}`:      "/attrs/k",
		`{"name":"abcdef"}`:            "/name",
		`{"tags":["a","b","c"]}`:       "/tags",
		`{"tags":["abcd"]}`:            "/tags/0",
		`{"tags":[null]}`:              "/tags/0",
		`{"name":"a\u0000"}`:           "/name",
		"{\"name\":\"a\xff\"}":         "/name",
		`{"name":"\ud800"}`:            "/name",
		`{"name":"\ufffd"}`:            "",
		"{\"name\":\"\uFFFD\"}":        "",
		`{"attrs":{"a\u0000":1}}`:      "/attrs/a\x00",
		`{"attrs":{"a/b~":"x\u0000"}}`: "/attrs/a~1b~0",
		`{"attrs":{"d":` + strings.Repeat(`[`, 20) + strings.Repeat(`]`, 20) + `}}`: "/attrs/d/0/0/0/0/0/0/0/0/0/0/0/0/0/0",
		`{"tags":["a",1]}`:              "/tags/1",
		`{"count":1.5}`:                 "/count",
		`{"count":"1"}`:                 "/count",
		`{"count":9223372036854775808}`: "/count",
		`{"inner":[]}`:                  "/inner",
		`{"attrs":[]}`:                  "/attrs",
		`{"inner":{"N":true}}`:          "/inner/N",
		`{"attrs":{"s":"` + strings.Repeat("x", 501) + `"}}`: "/attrs/s",
	} {
		err := scanJSON([]byte(body), typ)
		var he *httpError
		switch {
		case pointer == "" && err != nil:
			t.Errorf("%.80s: refused: %v", body, err)
		case pointer != "" && (!errors.As(err, &he) || he.status != 422 || len(he.fields) != 1 || he.fields[0].Pointer != pointer):
			var fields []problemField
			if he != nil {
				fields = he.fields
			}
			t.Errorf("%.80s: got %v %+v, want 422 at %q", body, err, fields, pointer)
		}
	}
	// Syntax errors are left to the decoder that follows.
	if err := scanJSON([]byte(`{"name":`), typ); err != nil {
		t.Errorf("truncated body: %v", err)
	}
}
