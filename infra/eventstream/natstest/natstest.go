// Package natstest gives tests a private nats-server with JetStream, started
// from the system's binary on 127.0.0.1, a free port and a temporary store
// directory, and stopped when the test ends. It never uses a server already
// running on the machine. When the binary is missing and the test runs as
// root with apt-get, Debian's nats-server package is installed, as cmd/devdb
// installs PostgreSQL.
package natstest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary finds nats-server, installing it when it can.
func Binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = ensureBinary() })
	return binPath, binErr
}

func findBinary() string {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

func ensureBinary() (string, error) {
	if p := findBinary(); p != "" {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("nats-server not found; install it (sudo apt-get install nats-server)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", errors.New("nats-server not found and apt-get is missing; install nats-server")
	}
	fmt.Fprintln(os.Stderr, "natstest: installing the nats-server package (one time)…")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "nats-server"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("apt-get %s failed (%v): %s", args[0], err, bytes.TrimSpace(out))
		}
	}
	if p := findBinary(); p != "" {
		return p, nil
	}
	return "", errors.New("nats-server installed but not found on PATH or in /usr/sbin")
}

// Server is one private nats-server; Stop and Start take it down and bring
// it back on the same address with the same store (its streams survive).
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
	log *lockedBuffer
}

// lockedBuffer is the server's output, written by exec's copying goroutine
// while Start reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) has(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.buf.Bytes(), []byte(s))
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs a JetStream server for the test; it is stopped at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, bin: bin, port: port, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// URL is the server's client URL.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Start (re)starts the server and waits until it takes connections.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	s.log = &lockedBuffer{}
	cmd := exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir, "-n", "quid-test")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			// JetStream is up once the server says it is ready.
			if s.log.has("Server is ready") {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server did not start: %s", s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server (SIGKILL: an outage, not a goodbye) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
