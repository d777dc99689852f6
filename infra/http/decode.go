package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"
)

var jsonMarshal = json.Marshal

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name := strings.SplitN(f.Tag.Get("json"), ",", 2)[0]
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}()

// decodeJSON reads the body strictly: unknown fields, trailing data and a
// wrong media type are rejected before any use case runs, then the struct's
// validate tags check its shape.
func decodeJSON(c *fiber.Ctx, dst any) error {
	mediaType, params, err := mime.ParseMediaType(string(c.Request().Header.ContentType()))
	if charset, named := params["charset"]; err != nil || mediaType != fiber.MIMEApplicationJSON || named && !strings.EqualFold(charset, "utf-8") {
		return &httpError{status: fiber.StatusUnsupportedMediaType, code: "unsupported-media-type",
			detail: "send the body as application/json"}
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &httpError{status: fiber.StatusBadRequest, code: "malformed-json", detail: "the body holds data after the JSON value"}
	}
	return validateStruct(dst)
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
		ptr := "/" + strings.ReplaceAll(typeErr.Field, ".", "/")
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
		b.WriteString("/" + name)
		if hasIdx {
			b.WriteString("/" + strings.TrimSuffix(idx, "]"))
		}
	}
	return b.String()
}

func reasonOf(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
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
