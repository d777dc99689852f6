package http

import (
	"crypto/sha256"
	"encoding/base64"
	"mime"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// inlineStyle finds the bodies of the <style> elements of Quid's pages.
var inlineStyle = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// htmlPolicy is the Content-Security-Policy of every HTML page Quid serves:
// nothing may load, run, submit or frame it, except the page's own inline
// stylesheets, allowed by their SHA-256 (CSP Level 3 §8.2), so a
// stylesheet edited without the policy following stops applying, visibly.
// Pages have no scripts, no style attributes and no external resources.
var htmlPolicy = func() string {
	styles := []string{}
	for _, m := range inlineStyle.FindAllStringSubmatch(statementHTML+noticeHTML, -1) {
		sum := sha256.Sum256([]byte(m[1]))
		styles = append(styles, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	if len(styles) == 0 {
		styles = []string{"'none'"}
	}
	return "default-src 'none'; style-src " + strings.Join(styles, " ") +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// secureResponses wraps fasthttp's handler and error handler, the two
// places every response leaves from (fiber's routes and middleware, the
// edge refusals before fiber, unreadable requests), so each response gets
// the headers below whichever layer wrote it: X-Content-Type-Options:
// nosniff on all, so no browser reads JSON or a problem as a page; and on
// HTML, the policy above, X-Frame-Options for browsers without
// frame-ancestors, and no Referer sent from the page's links (the
// statement links to recipients' privacy policies).
func secureResponses(a *fiber.App) {
	srv := a.Server()
	handler, errorHandler := srv.Handler, srv.ErrorHandler
	srv.Handler = func(fctx *fasthttp.RequestCtx) {
		handler(fctx)
		secureHeaders(&fctx.Response.Header)
	}
	srv.ErrorHandler = func(fctx *fasthttp.RequestCtx, err error) {
		errorHandler(fctx, err)
		secureHeaders(&fctx.Response.Header)
	}
}

func secureHeaders(h *fasthttp.ResponseHeader) {
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if isDocument(string(h.ContentType())) {
		// The web pages (/account) set their own policy, which allows their
		// stylesheet and forms; every other page gets htmlPolicy.
		if len(h.Peek(fiber.HeaderContentSecurityPolicy)) == 0 {
			h.Set(fiber.HeaderContentSecurityPolicy, htmlPolicy)
		}
		h.Set(fiber.HeaderXFrameOptions, "DENY")
		// The web pages send same-origin: under no-referrer a browser posts
		// their forms with Origin: null (Fetch, "serializing a request
		// origin"), which no origin check can tell from a sandboxed frame.
		if len(h.Peek(fiber.HeaderReferrerPolicy)) == 0 {
			h.Set(fiber.HeaderReferrerPolicy, "no-referrer")
		}
	}
}

// isDocument is true for the media types a browser renders as a page that
// can run script: HTML, XHTML and SVG.
func isDocument(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	}
	switch mt {
	case "text/html", "application/xhtml+xml", "image/svg+xml":
		return true
	}
	return false
}
