// Command devdb gives `make run` and `make test` a private PostgreSQL cluster
// in .devdb/ when DATABASE_URL is not set, so a fresh machine needs nothing
// running. It prints the cluster's URL on stdout; everything else goes to
// stderr.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `Usage: go run ./cmd/devdb url|stop|status

  url     start the private cluster in .devdb/ if needed and print its URL
  stop    stop it
  status  say whether it runs
`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "url":
		var url string
		if url, err = ensure(); err == nil {
			fmt.Println(url)
		}
	case "stop":
		err = stop()
	case "status":
		err = status()
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
}

type cluster struct {
	root, dir, data, sock, bin string
	owner                      *user.User // nil: run as the current user
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run devdb inside the repository")
		}
		dir = parent
	}
}

func newCluster() (*cluster, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	c := &cluster{root: root, dir: filepath.Join(root, ".devdb")}
	c.data = filepath.Join(c.dir, "data")
	c.sock = filepath.Join(c.dir, "sock")
	// Unix socket paths are limited to about 107 bytes.
	if len(c.sock)+len("/.s.PGSQL.65535") > 100 {
		sum := sha256.Sum256([]byte(root))
		c.sock = filepath.Join(os.TempDir(), "quid-devdb-"+hex.EncodeToString(sum[:6]))
	}
	return c, nil
}

// findBin returns the directory of the newest PostgreSQL server binaries.
func findBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if isFile(filepath.Join(d, "initdb")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func (c *cluster) ensureBinaries() error {
	if c.bin = findBin(); c.bin != "" {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("PostgreSQL server binaries not found; install them (sudo apt-get install postgresql) or set DATABASE_URL")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("PostgreSQL server binaries not found and apt-get is missing; install PostgreSQL or set DATABASE_URL")
	}
	fmt.Fprintln(os.Stderr, "devdb: installing the postgresql package (one time)…")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "postgresql"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	if c.bin = findBin(); c.bin == "" {
		return errors.New("postgresql installed but initdb not found under /usr/lib/postgresql")
	}
	return nil
}

// chooseOwner picks who runs the server: initdb refuses root, so root hands
// the cluster to the unprivileged postgres user.
func (c *cluster) chooseOwner() error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres").CombinedOutput(); err != nil {
			return fmt.Errorf("create user postgres: %v: %s", err, out)
		}
		if u, err = user.Lookup("postgres"); err != nil {
			return err
		}
	}
	c.owner = u
	return nil
}

func (c *cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.owner != nil {
		cmd = exec.Command("runuser", append([]string{"-u", c.owner.Username, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func (c *cluster) chown(paths ...string) error {
	if c.owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	for _, p := range paths {
		if err := filepath.Walk(p, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, uid, gid)
		}); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) lock() (func(), error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(c.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (c *cluster) url(port int) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
}

func (c *cluster) storedPort() int {
	b, _ := os.ReadFile(filepath.Join(c.dir, "port"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func accepting(port int) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 500*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func (c *cluster) running() bool {
	if !isFile(filepath.Join(c.data, "postmaster.pid")) {
		return false
	}
	_, err := c.run("pg_ctl", "-D", c.data, "status")
	return err == nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func ensure() (string, error) {
	c, err := newCluster()
	if err != nil {
		return "", err
	}
	unlock, err := c.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if p := c.storedPort(); p != 0 && accepting(p) && isFile(filepath.Join(c.data, "postmaster.pid")) {
		return c.url(p), nil
	}
	if err := c.ensureBinaries(); err != nil {
		return "", err
	}
	if err := c.chooseOwner(); err != nil {
		return "", err
	}
	if !isFile(filepath.Join(c.data, "PG_VERSION")) {
		start := time.Now()
		_ = os.RemoveAll(c.data)
		if err := os.MkdirAll(c.data, 0o700); err != nil {
			return "", err
		}
		if err := c.chown(c.dir); err != nil {
			return "", err
		}
		out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
		_ = os.WriteFile(filepath.Join(c.dir, "initdb.log"), out, 0o644)
		if err != nil {
			return "", fmt.Errorf("initdb failed: %v\n%s", err, out)
		}
		fmt.Fprintf(os.Stderr, "devdb: created a private PostgreSQL cluster in %s (%s)\n", c.dir, time.Since(start).Round(time.Millisecond))
	}
	if c.running() {
		_, _ = c.run("pg_ctl", "-D", c.data, "-m", "fast", "stop")
	}
	port := c.storedPort()
	if port == 0 || accepting(port) {
		if port, err = freePort(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(c.sock, 0o755); err != nil {
		return "", err
	}
	logFile := filepath.Join(c.dir, "server.log")
	if err := touch(logFile); err != nil {
		return "", err
	}
	if err := c.chown(c.sock, logFile); err != nil {
		return "", err
	}
	// A disposable development cluster: durability settings are off for speed.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB",
		port, c.sock)
	out, err := c.run("pg_ctl", "-D", c.data, "-l", logFile, "-w", "-t", "60", "-o", opts, "start")
	if err != nil {
		tail, _ := os.ReadFile(logFile)
		lines := bytes.Split(bytes.TrimSpace(tail), []byte("\n"))
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		return "", fmt.Errorf("start failed: %v\n%s\n%s", err, out, bytes.Join(lines, []byte("\n")))
	}
	if err := os.WriteFile(filepath.Join(c.dir, "port"), []byte(strconv.Itoa(port)), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "devdb: PostgreSQL is running on 127.0.0.1:%d (stop it with make db-stop)\n", port)
	return c.url(port), nil
}

func touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func stop() error {
	c, err := newCluster()
	if err != nil {
		return err
	}
	if !isFile(filepath.Join(c.data, "postmaster.pid")) {
		fmt.Fprintln(os.Stderr, "devdb: not running")
		return nil
	}
	if c.bin = findBin(); c.bin == "" {
		return errors.New("PostgreSQL binaries not found")
	}
	if err := c.chooseOwner(); err != nil {
		return err
	}
	if out, err := c.run("pg_ctl", "-D", c.data, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("stop: %v: %s", err, out)
	}
	fmt.Fprintln(os.Stderr, "devdb: stopped")
	return nil
}

func status() error {
	c, err := newCluster()
	if err != nil {
		return err
	}
	if p := c.storedPort(); p != 0 && accepting(p) && isFile(filepath.Join(c.data, "postmaster.pid")) {
		fmt.Printf("running on 127.0.0.1:%d\n", p)
		return nil
	}
	fmt.Println("stopped")
	return nil
}
