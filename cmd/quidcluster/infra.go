package main

import (
	"context"
	"crypto/rand"
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

	"github.com/jackc/pgx/v5"
)

// node is one PostgreSQL server of the cluster.
type node struct {
	name string
	data string // data directory
	port int
}

// cluster is the processes the harness runs, in dir, each stopped by
// stopAll: PostgreSQL primary and standby, PgBouncer, HAProxy, replicas.
type cluster struct {
	dir      string
	owner    *user.User // the unprivileged user PostgreSQL and PgBouncer run as when root runs the harness
	pgBin    string
	bouncer  string // pgbouncer binary
	haproxy  string // haproxy binary
	password string

	primary, standby node
	bouncerPort      int
	haproxyPort      int
	bouncerCmd       *exec.Cmd
	haproxyCmd       *exec.Cmd
}

// findPG is the newest PostgreSQL server binaries' directory, as devdb
// finds it (cmd/devdb: findBin).
func findPG() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "pg_basebackup")) {
			return d
		}
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func lookBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if isFile(filepath.Join(d, name)) {
			return filepath.Join(d, name)
		}
	}
	return ""
}

// ensureTools finds PostgreSQL, PgBouncer and HAProxy, installing the
// Debian packages that are missing when run as root (as devdb installs
// PostgreSQL).
func (c *cluster) ensureTools() error {
	var missing []string
	if c.pgBin = findPG(); c.pgBin == "" {
		missing = append(missing, "postgresql")
	}
	if c.bouncer = lookBin("pgbouncer"); c.bouncer == "" {
		missing = append(missing, "pgbouncer")
	}
	if c.haproxy = lookBin("haproxy"); c.haproxy == "" {
		missing = append(missing, "haproxy")
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 || lookBin("apt-get") == "" {
		return fmt.Errorf("missing %s; install them (apt-get install %s) or run as root on Debian", strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	logf("installing %s (one time)…", strings.Join(missing, " "))
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %v", args[0], err)
		}
	}
	// The packages start their own services on the default ports; the
	// harness uses its own instances on free ports and leaves those alone.
	if c.pgBin, c.bouncer, c.haproxy = findPG(), lookBin("pgbouncer"), lookBin("haproxy"); c.pgBin == "" || c.bouncer == "" || c.haproxy == "" {
		return errors.New("packages installed but postgresql, pgbouncer or haproxy still not found")
	}
	return nil
}

// setup makes the cluster's directory: in the temporary directory, where
// PostgreSQL's unprivileged user can reach it whatever the checkout's
// permissions (a clone under a 0700 home), and private to that user.
func (c *cluster) setup() error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres").CombinedOutput(); err != nil {
				return fmt.Errorf("useradd postgres: %v: %s", err, out)
			}
			if u, err = user.Lookup("postgres"); err != nil {
				return err
			}
		}
		c.owner = u
	}
	base := os.TempDir()
	if c.owner != nil && !othersCanEnter(base) {
		base = "/tmp" // a private TMPDIR (under /root) the server's user cannot reach
	}
	dir, err := os.MkdirTemp(base, "quid-cluster-")
	if err != nil {
		return err
	}
	c.dir = dir
	c.password = rand.Text()
	return c.chown(dir)
}

// othersCanEnter reports whether a user who neither owns nor shares a group
// with path and its parents can traverse them.
func othersCanEnter(path string) bool {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

func (c *cluster) chown(paths ...string) error {
	if c.owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	for _, p := range paths {
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// asOwner makes cmd run as the cluster's owner: PostgreSQL (initdb) and
// PgBouncer refuse root.
func (c *cluster) asOwner(cmd *exec.Cmd) *exec.Cmd {
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "PGPASSWORD="+c.password)
	if c.owner != nil {
		uid, _ := strconv.Atoi(c.owner.Uid)
		gid, _ := strconv.Atoi(c.owner.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		cmd.Env = append(cmd.Env, "HOME="+c.dir, "USER=postgres")
	}
	return cmd
}

func (c *cluster) pg(name string, args ...string) error {
	out, err := c.asOwner(exec.Command(filepath.Join(c.pgBin, name), args...)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// writeOwned writes a file private to the cluster's owner.
func (c *cluster) writeOwned(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	return c.chown(path)
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freePorts(n int) ([]int, error) {
	var ps []int
	seen := map[int]bool{}
	for len(ps) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// url is a libpq URL for the superuser on the given hosts' ports.
func (c *cluster) url(db string, ports ...int) string {
	var hosts []string
	for _, p := range ports {
		hosts = append(hosts, "127.0.0.1:"+strconv.Itoa(p))
	}
	u := "postgres://postgres:" + c.password + "@" + strings.Join(hosts, ",") + "/" + db + "?sslmode=disable"
	if len(ports) > 1 {
		u += "&target_session_attrs=read-write"
	}
	return u
}

// startPostgres makes the primary and its synchronous standby, and waits
// until the standby is streaming as the synchronous one.
func (c *cluster) startPostgres(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	c.primary = node{name: "primary", data: filepath.Join(c.dir, "primary"), port: ports[0]}
	c.standby = node{name: "standby", data: filepath.Join(c.dir, "standby"), port: ports[1]}
	pw := filepath.Join(c.dir, "pw")
	if err := c.writeOwned(pw, c.password); err != nil {
		return err
	}
	if err := c.pg("initdb", "-D", c.primary.data, "-U", "postgres", "--auth-host=scram-sha-256", "--auth-local=peer",
		"--pwfile="+pw, "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return err
	}
	os.Remove(pw)
	// Synchronous commit to one named standby: a commit the primary
	// acknowledges is on the standby too, so promotion loses nothing a
	// client saw acknowledged. fsync stays off: nothing here survives the
	// machine, and every failure the harness makes is of a process.
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = on
synchronous_standby_names = 'standby1'
wal_level = replica
max_wal_senders = 5
log_error_verbosity = terse
`, c.primary.port)
	if err := appendFile(filepath.Join(c.primary.data, "postgresql.conf"), conf); err != nil {
		return err
	}
	if err := c.pgStart(c.primary); err != nil {
		return err
	}
	if err := c.pg("pg_basebackup", "-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres", c.primary.port),
		"-D", c.standby.data, "-X", "stream", "-R", "--no-sync"); err != nil {
		return err
	}
	// The standby names itself standby1; promoted, it waits for no
	// standby of its own (it has none), or every commit would hang.
	sconf := fmt.Sprintf(`
port = %d
synchronous_standby_names = ''
primary_conninfo = 'host=127.0.0.1 port=%d user=postgres password=%s application_name=standby1'
`, c.standby.port, c.primary.port, c.password)
	if err := appendFile(filepath.Join(c.standby.data, "postgresql.auto.conf"), sconf); err != nil {
		return err
	}
	if err := c.pgStart(c.standby); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, c.url("postgres", c.primary.port))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state string
		err := conn.QueryRow(ctx, `SELECT coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'), '')`).Scan(&state)
		if err == nil && state == "sync" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the standby is not a synchronous standby after 30 s (state %q, %v)", state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE quid")
	return err
}

func (c *cluster) pgStart(n node) error {
	log := filepath.Join(c.dir, n.name+".log")
	if err := c.writeOwned(log, ""); err != nil {
		return err
	}
	return c.pg("pg_ctl", "-D", n.data, "-l", log, "-w", "-t", "60", "start")
}

// pgbouncerIni points PgBouncer's database quid at a PostgreSQL port.
func (c *cluster) pgbouncerIni(port int) string {
	return fmt.Sprintf(`[databases]
quid = host=127.0.0.1 port=%d dbname=quid

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = transaction
max_client_conn = 500
default_pool_size = 40
server_login_retry = 1
logfile = %s
pidfile = %s
admin_users = postgres
`, port, c.bouncerPort, filepath.Join(c.dir, "userlist.txt"), filepath.Join(c.dir, "pgbouncer.log"), filepath.Join(c.dir, "pgbouncer.pid"))
}

func (c *cluster) startBouncer() error {
	var err error
	if c.bouncerPort, err = freePort(); err != nil {
		return err
	}
	if err := c.writeOwned(filepath.Join(c.dir, "userlist.txt"), fmt.Sprintf("%q %q\n", "postgres", c.password)); err != nil {
		return err
	}
	for _, f := range []string{"pgbouncer.ini", "pgbouncer.log"} {
		text := ""
		if f == "pgbouncer.ini" {
			text = c.pgbouncerIni(c.primary.port)
		}
		if err := c.writeOwned(filepath.Join(c.dir, f), text); err != nil {
			return err
		}
	}
	c.bouncerCmd = c.asOwner(exec.Command(c.bouncer, filepath.Join(c.dir, "pgbouncer.ini")))
	if err := c.bouncerCmd.Start(); err != nil {
		return err
	}
	return waitTCP(c.bouncerPort, 10*time.Second)
}

// repoint re-points PgBouncer at port: the ini is rewritten and reloaded
// (SIGHUP, as RELOAD on the admin console); server connections to the old
// address are closed as they are released.
func (c *cluster) repoint(port int) error {
	if err := c.writeOwned(filepath.Join(c.dir, "pgbouncer.ini"), c.pgbouncerIni(port)); err != nil {
		return err
	}
	return c.bouncerCmd.Process.Signal(syscall.SIGHUP)
}

func (c *cluster) startHAProxy(backends []int) error {
	var err error
	if c.haproxyPort, err = freePort(); err != nil {
		return err
	}
	var servers strings.Builder
	for i, p := range backends {
		fmt.Fprintf(&servers, "    server q%d 127.0.0.1:%d check\n", i+1, p)
	}
	// Health checks every 500 ms on /readyz; a request whose connection
	// could not be made goes to another replica (redispatch); nothing sent
	// is ever re-sent (retry-on's default is connect failures only).
	cfg := fmt.Sprintf(`global
    maxconn 4000
    log stderr format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
frontend quid
    bind 127.0.0.1:%d
    default_backend replicas
backend replicas
    http-response set-header X-Replica %%s
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1
%s`, c.haproxyPort, servers.String())
	path := filepath.Join(c.dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	c.haproxyCmd = exec.Command(c.haproxy, "-db", "-f", path)
	logFile, err := os.Create(filepath.Join(c.dir, "haproxy.log"))
	if err != nil {
		return err
	}
	c.haproxyCmd.Stdout, c.haproxyCmd.Stderr = logFile, logFile
	if err := c.haproxyCmd.Start(); err != nil {
		return err
	}
	return waitTCP(c.haproxyPort, 10*time.Second)
}

func waitTCP(port int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond); err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on port %d after %s", port, d)
}

// stopAll stops every process the harness started, each by its own id
// or data directory.
func (c *cluster) stopAll() {
	for _, p := range []*exec.Cmd{c.haproxyCmd, c.bouncerCmd} {
		if p != nil && p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}
	for _, n := range []node{c.primary, c.standby} {
		if n.data != "" && isFile(filepath.Join(n.data, "postmaster.pid")) {
			_ = c.pg("pg_ctl", "-D", n.data, "-m", "immediate", "-w", "stop")
		}
	}
}
