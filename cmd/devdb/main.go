// Command devdb gives `make run` and `make test` a private PostgreSQL cluster
// in .devdb/ when DATABASE_URL is not set, so a fresh machine needs nothing
// running. It prints the cluster's URL on stdout; everything else goes to
// stderr, and a failure is one line: the cause and the way out.
//
// Run as root, the server runs as the postgres user (initdb refuses root).
// When postgres cannot reach the checkout (a clone in /root or under any
// 0700 directory), the cluster lives in a directory of the temporary
// directory named after the checkout's path instead, and .devdb/location
// points to it, so url, stop and status find it and two clones never share.
//
// The server listens on 127.0.0.1, where every local user can reach it, so
// TCP connections need a password (scram-sha-256): a random one made at
// initdb and kept in .devdb/password, readable by the invoking user only,
// which url puts in the URL it prints. The cluster's directory and its
// server log are private to the server's user, and the log is terse, since
// it can hold the personal data of the rows the tests and make run write.
//
// QUID_DEVDB_DIR, when set, names the directory of another cluster to use
// instead of the checkout's .devdb: a test that stops and starts PostgreSQL
// (cmd/quid's fault tests) runs one of its own without touching the cluster
// every other test shares, and removes it with destroy.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
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

const usage = `Usage: go run ./cmd/devdb url|stop|status|destroy

  url      start the private cluster in .devdb/ if needed and print its URL
  stop     stop it
  status   say whether it runs
  destroy  stop it and delete its data

QUID_DEVDB_DIR=<dir> works on a cluster in <dir> instead of .devdb/.
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
	case "destroy":
		err = destroy()
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", oneLine(err.Error()))
		os.Exit(1)
	}
}

// wayOut is appended to failures that have no more specific remedy.
const wayOut = "or set DATABASE_URL to a PostgreSQL server you run"

// oneLine folds a multi-line message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// lastLine is the last non-empty line of a command's output, where
// PostgreSQL's tools put the reason they failed.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

type cluster struct {
	root    string // the checkout
	state   string // <root>/.devdb: lock, password, and location when the cluster lives elsewhere
	dir     string // the cluster's directory: data, logs, port
	data    string
	bin     string
	owner   *user.User // nil: run as the current user
	outside bool       // dir is not under the checkout
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
			return "", errors.New("no go.mod in this directory or above; run devdb (make run, make test) inside the Quid checkout")
		}
		dir = parent
	}
}

func newCluster() (*cluster, error) {
	var c *cluster
	if dir := os.Getenv("QUID_DEVDB_DIR"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		// The directory stands for the checkout: it keys the relocated
		// cluster's directory, so two such clusters never share.
		c = &cluster{root: abs, state: abs}
	} else {
		root, err := repoRoot()
		if err != nil {
			return nil, err
		}
		c = &cluster{root: root, state: filepath.Join(root, ".devdb")}
	}
	c.setDir(c.state)
	// A location written for another checkout path (a copied .devdb) names
	// another key and is ignored.
	if b, err := os.ReadFile(filepath.Join(c.state, "location")); err == nil {
		if dir := strings.TrimSpace(string(b)); filepath.Base(dir) == "quid-devdb-"+c.key() {
			c.setDir(dir)
			c.outside = true
		}
	}
	return c, nil
}

func (c *cluster) setDir(dir string) {
	c.dir = dir
	c.data = filepath.Join(dir, "data")
}

// key names this checkout in shared directories: two clones never share.
func (c *cluster) key() string {
	sum := sha256.Sum256([]byte(c.root))
	return hex.EncodeToString(sum[:6])
}

// ownerCan reports whether the server's user may use path (test(1) flags
// such as -x or -w), through every parent directory.
func (c *cluster) ownerCan(flag, path string) bool {
	if c.owner == nil {
		return true
	}
	return exec.Command("runuser", "-u", c.owner.Username, "--", "test", flag, path).Run() == nil
}

// placeOutside moves the cluster out of a checkout its server cannot reach,
// into a directory of the first temporary directory it can write, named
// after the checkout. Only root hands the cluster to another user.
func (c *cluster) placeOutside() error {
	if c.owner == nil || c.outside || c.ownerCan("-x", c.root) {
		return nil
	}
	var base string
	for _, b := range []string{os.TempDir(), "/tmp", "/var/tmp"} {
		if c.ownerCan("-w", b) && c.ownerCan("-x", b) {
			base = b
			break
		}
	}
	if base == "" {
		return fmt.Errorf("user %s can reach neither %s nor a temporary directory (%s, /tmp, /var/tmp); make one of them reachable (chmod o+x on each parent), %s",
			c.owner.Username, c.root, os.TempDir(), wayOut)
	}
	dir := filepath.Join(base, "quid-devdb-"+c.key())
	if st, err := os.Lstat(dir); err == nil {
		uid, _ := strconv.Atoi(c.owner.Uid)
		sys, _ := st.Sys().(*syscall.Stat_t)
		if !st.IsDir() || sys == nil || (int(sys.Uid) != uid && sys.Uid != 0) {
			return fmt.Errorf("%s exists and is not a directory of %s or root; remove it and retry, %s", dir, c.owner.Username, wayOut)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %v; %s", dir, err, wayOut)
	}
	if err := os.WriteFile(filepath.Join(c.state, "location"), []byte(dir+"\n"), 0o644); err != nil {
		return fmt.Errorf("record the cluster's location in %s: %v; %s", c.state, err, wayOut)
	}
	fmt.Fprintf(os.Stderr, "devdb: user %s cannot reach %s; the cluster lives in %s\n", c.owner.Username, c.root, dir)
	c.setDir(dir)
	c.outside = true
	return nil
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
			return fmt.Errorf("apt-get %s failed (%v, output above); install PostgreSQL yourself or set DATABASE_URL", args[0], err)
		}
	}
	if c.bin = findBin(); c.bin == "" {
		return errors.New("postgresql installed but initdb not found under /usr/lib/postgresql; put PostgreSQL's bin directory on PATH or set DATABASE_URL")
	}
	return nil
}

// chooseOwner picks who runs the server: initdb refuses root, so root hands
// the cluster to the unprivileged postgres user.
func (c *cluster) chooseOwner() error {
	if os.Geteuid() != 0 {
		return nil
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return fmt.Errorf("root runs the server as the postgres user through runuser, which is missing; install util-linux, run as a non-root user, %s", wayOut)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres").CombinedOutput(); err != nil {
			return fmt.Errorf("root needs a postgres user to run the server, and useradd failed (%v): %s; create the user, run as a non-root user, %s", err, lastLine(out), wayOut)
		}
		if u, err = user.Lookup("postgres"); err != nil {
			return fmt.Errorf("look up the postgres user just created: %v; %s", err, wayOut)
		}
	}
	c.owner = u
	return nil
}

// pg_ctl starts the server through a shell with its paths in double
// quotes, so a checkout path holding a quote or a dollar sign would be
// read as shell syntax: it is given paths relative to the cluster's
// directory, where it runs, which are fixed names.
const (
	dataRel = "data"
	logRel  = "server.log"
)

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

// makePrivate gives the cluster's directory to the server's user alone and
// closes its logs to everyone else, including those an older devdb left
// readable (0755 and 0644).
func (c *cluster) makePrivate() error {
	if _, err := os.Stat(c.dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := c.chownOne(c.dir); err != nil {
		return err
	}
	if err := os.Chmod(c.dir, 0o700); err != nil {
		return err
	}
	for _, name := range []string{logRel, "initdb.log"} {
		if err := os.Chmod(filepath.Join(c.dir, name), 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// chownOne gives one path, not what it holds, to the server's user.
func (c *cluster) chownOne(path string) error {
	if c.owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	return os.Lchown(path, uid, gid)
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
	if err := os.MkdirAll(c.state, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %v; make the checkout writable, %s", c.state, err, wayOut)
	}
	f, err := os.OpenFile(filepath.Join(c.state, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %v; make the checkout writable, %s", filepath.Join(c.state, "lock"), err, wayOut)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %v; %s", filepath.Join(c.state, "lock"), err, wayOut)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (c *cluster) url(port int, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/postgres",
		RawQuery: url.Values{"sslmode": {"disable"}}.Encode(),
	}
	return u.String()
}

// passwordFile holds the superuser's password, in the checkout's state
// directory (not the cluster's, which belongs to the server's user), for
// the invoking user alone.
func (c *cluster) passwordFile() string {
	return filepath.Join(c.state, "password")
}

// storedPassword is the password url prints, or "" when there is none:
// a cluster made before passwords, or one whose password file was removed.
func (c *cluster) storedPassword() string {
	b, err := os.ReadFile(c.passwordFile())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// writePrivate writes a file only its owner can read, whatever mode it had.
func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
	_, err := c.run("pg_ctl", "-D", dataRel, "status")
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
	password := c.storedPassword()
	if p := c.storedPort(); p != 0 && password != "" && accepting(p) && isFile(filepath.Join(c.data, "postmaster.pid")) {
		return c.url(p, password), nil
	}
	if err := c.ensureBinaries(); err != nil {
		return "", err
	}
	if err := c.chooseOwner(); err != nil {
		return "", err
	}
	if err := c.placeOutside(); err != nil {
		return "", err
	}
	if err := c.makePrivate(); err != nil {
		return "", fmt.Errorf("make %s private to %s: %v; %s", c.dir, c.serverUser(), err, wayOut)
	}
	// A cluster without a stored password was made by an older devdb, which
	// let every local user in as superuser (trust), or its password file was
	// removed. Its data is disposable, so it is made again rather than
	// patched: one path to a cluster, the one initdb takes.
	if password == "" && isFile(filepath.Join(c.data, "PG_VERSION")) {
		fmt.Fprintf(os.Stderr, "devdb: the cluster in %s has no password in %s (made by an older devdb, or the file was removed); re-creating it, which drops its development databases\n", c.dir, c.passwordFile())
		if c.running() {
			if out, err := c.run("pg_ctl", "-D", dataRel, "-m", "fast", "-w", "stop"); err != nil {
				return "", fmt.Errorf("stop the old cluster in %s (%v): %s; end its postgres process, remove %s and retry, %s", c.dir, err, lastLine(out), c.data, wayOut)
			}
		}
		if err := os.RemoveAll(c.data); err != nil {
			return "", fmt.Errorf("remove the old cluster %s: %v; remove it yourself and retry, %s", c.data, err, wayOut)
		}
	}
	if !isFile(filepath.Join(c.data, "PG_VERSION")) {
		start := time.Now()
		_ = os.RemoveAll(c.data)
		if err := os.MkdirAll(c.data, 0o700); err != nil {
			return "", fmt.Errorf("create %s: %v; %s", c.data, err, wayOut)
		}
		if err := c.chownOne(c.dir); err != nil {
			return "", fmt.Errorf("hand %s to %s: %v; %s", c.dir, c.serverUser(), err, wayOut)
		}
		if err := c.chown(c.data); err != nil {
			return "", fmt.Errorf("hand %s to %s: %v; %s", c.data, c.serverUser(), err, wayOut)
		}
		// 26 base32 letters and digits, 130 random bits: nothing a URL or
		// a shell reads specially.
		password = rand.Text()
		if err := writePrivate(c.passwordFile(), []byte(password+"\n")); err != nil {
			return "", fmt.Errorf("store the password in %s: %v; make the checkout writable, %s", c.passwordFile(), err, wayOut)
		}
		// initdb reads the password from a file its user (postgres, when
		// root runs devdb) can read: one in the private cluster directory,
		// removed once initdb is done.
		pwFile := filepath.Join(c.dir, "initdb.pw")
		if err := writePrivate(pwFile, []byte(password)); err != nil {
			return "", fmt.Errorf("write %s: %v; %s", pwFile, err, wayOut)
		}
		if err := c.chownOne(pwFile); err != nil {
			os.Remove(pwFile)
			return "", fmt.Errorf("hand %s to %s: %v; %s", pwFile, c.serverUser(), err, wayOut)
		}
		// Password (SCRAM) for TCP, where every local user can connect;
		// peer for Unix sockets, though the server makes none.
		out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "--auth-host=scram-sha-256", "--auth-local=peer",
			"--pwfile="+pwFile, "-E", "UTF8", "--no-locale", "--no-sync")
		if rmErr := os.Remove(pwFile); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			return "", fmt.Errorf("remove %s: %v; remove it yourself, %s", pwFile, rmErr, wayOut)
		}
		logFile := filepath.Join(c.dir, "initdb.log")
		_ = writePrivate(logFile, out)
		if err != nil {
			return "", fmt.Errorf("initdb failed (%v): %s; the whole output is in %s; remove %s and retry, %s", err, lastLine(out), logFile, c.data, wayOut)
		}
		fmt.Fprintf(os.Stderr, "devdb: created a private PostgreSQL cluster in %s (%s)\n", c.dir, time.Since(start).Round(time.Millisecond))
	}
	if c.running() {
		_, _ = c.run("pg_ctl", "-D", dataRel, "-m", "fast", "stop")
	}
	port := c.storedPort()
	if port == 0 || accepting(port) {
		if port, err = freePort(); err != nil {
			return "", fmt.Errorf("find a free port on 127.0.0.1: %v; %s", err, wayOut)
		}
	}
	// The log can hold what failing statements carried (personal data), so
	// it is the server user's alone; pg_ctl appends to it and keeps its mode.
	logFile := filepath.Join(c.dir, logRel)
	if err := touchPrivate(logFile); err != nil {
		return "", fmt.Errorf("create %s: %v; %s", logFile, err, wayOut)
	}
	if err := c.chown(logFile); err != nil {
		return "", fmt.Errorf("hand %s to %s: %v; %s", logFile, c.serverUser(), err, wayOut)
	}
	// A disposable development cluster: durability settings are off for speed.
	// Clients use loopback TCP only, so no Unix socket is made: pg_ctl hands
	// -o to a shell, and no path (which may hold spaces or quotes) goes in it.
	// Terse errors leave out DETAIL (such as "Failing row contains (...)"),
	// CONTEXT and QUERY, which would copy row values into the log.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c log_error_verbosity=terse -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB",
		port)
	out, err := c.run("pg_ctl", "-D", dataRel, "-l", logRel, "-w", "-t", "60", "-o", opts, "start")
	if err != nil {
		tail, _ := os.ReadFile(logFile)
		reason := lastLine(tail)
		if reason == "" {
			reason = lastLine(out)
		}
		return "", fmt.Errorf("PostgreSQL did not start (%v): %s; see %s, stop whatever holds the port or data directory and retry, %s", err, reason, logFile, wayOut)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "port"), []byte(strconv.Itoa(port)), 0o644); err != nil {
		return "", fmt.Errorf("record the port in %s: %v; %s", c.dir, err, wayOut)
	}
	fmt.Fprintf(os.Stderr, "devdb: PostgreSQL is running on 127.0.0.1:%d (stop it with make db-stop)\n", port)
	return c.url(port, password), nil
}

// touchPrivate creates path if need be, readable by its owner only.
func touchPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// serverUser names who runs the server, for messages.
func (c *cluster) serverUser() string {
	if c.owner != nil {
		return c.owner.Username
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "the current user"
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
		return fmt.Errorf("PostgreSQL binaries not found, so the cluster in %s cannot be stopped; install PostgreSQL or end its postgres process", c.dir)
	}
	if err := c.chooseOwner(); err != nil {
		return err
	}
	// The stopped cluster stays on disk (in the temporary directory when
	// relocated), so it must stay private, even if an older devdb made it.
	if err := c.makePrivate(); err != nil {
		fmt.Fprintf(os.Stderr, "devdb: could not make %s private: %v\n", c.dir, err)
	}
	if out, err := c.run("pg_ctl", "-D", dataRel, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop failed (%v): %s; end the postgres process of %s yourself", err, lastLine(out), c.data)
	}
	fmt.Fprintln(os.Stderr, "devdb: stopped")
	return nil
}

// destroy stops the cluster and deletes its directory (the data, the server
// log and the port), and the password: the next url makes a new cluster.
func destroy() error {
	if err := stop(); err != nil {
		return err
	}
	c, err := newCluster()
	if err != nil {
		return err
	}
	dir := c.data
	if c.outside {
		dir = c.dir
	}
	for _, p := range []string{dir, filepath.Join(c.dir, logRel), filepath.Join(c.dir, "port"), filepath.Join(c.dir, "initdb.log"), c.passwordFile()} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %v", p, err)
		}
	}
	fmt.Fprintf(os.Stderr, "devdb: deleted the cluster in %s\n", c.dir)
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
