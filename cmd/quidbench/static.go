package main

// The baseline of the cached public reads: a minimal fiber server, run as
// its own process (quidbench started again with QUIDBENCH_STATIC set), that
// answers the same paths with the very bytes and headers the service sent.
// It is the ceiling of fiber plus this load generator on this machine: what
// a cached read could cost if serving it took nothing but HTTP.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

type staticRoute struct {
	Path    string            `json:"path"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"`
}

// captureRoute fetches path from the service once and keeps its answer.
func captureRoute(c *fasthttp.Client, base, path string) (staticRoute, error) {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI(base + path)
	if err := c.Do(req, res); err != nil {
		return staticRoute{}, err
	}
	if res.StatusCode() != 200 {
		return staticRoute{}, fmt.Errorf("GET %s: %d", path, res.StatusCode())
	}
	r := staticRoute{Path: path, Status: 200, Headers: map[string]string{}, Body: append([]byte{}, res.Body()...)}
	res.Header.VisitAll(func(k, v []byte) {
		switch string(k) {
		case "Date", "Content-Length", "Connection", "Server":
		default:
			r.Headers[string(k)] = string(v)
		}
	})
	return r, nil
}

// startStatic starts the baseline server on addr serving routes.
func startStatic(addr string, routes []staticRoute) (*exec.Cmd, error) {
	spec, err := json.Marshal(routes)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "quidbench-static-*.json")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Write(spec); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "QUIDBENCH_STATIC="+f.Name(), "QUIDBENCH_STATIC_ADDR="+addr)
	cmd.Stderr = os.Stderr
	return cmd, cmd.Start()
}

// serveStatic is the baseline server's main.
func serveStatic(specFile, addr string) error {
	spec, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	_ = os.Remove(specFile)
	var routes []staticRoute
	if err := json.Unmarshal(spec, &routes); err != nil {
		return err
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/readyz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	for _, r := range routes {
		app.Get(r.Path, func(c *fiber.Ctx) error {
			for k, v := range r.Headers {
				c.Set(k, v)
			}
			return c.Status(r.Status).Send(r.Body)
		})
	}
	return app.Listen(addr)
}
