package main

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// The private cluster starts, answers, reports its state and stops wherever
// the checkout is: here a fresh clone under a 0700 directory, as the user
// running the tests and, when that is root, also as a non-root user (kind 1).
// As root the postgres user cannot reach such a clone, so the cluster must
// live outside it.
func TestClusterRunsFromACheckoutUnderA0700Directory(t *testing.T) {
	bin := buildDevdb(t)
	t.Run("as "+currentUser(t), func(t *testing.T) {
		t.Parallel()
		checkout, _ := cloneUnder0700(t, nil)
		dataDir := exercise(t, bin, checkout, nil)
		inside := strings.HasPrefix(dataDir, checkout+string(filepath.Separator))
		if os.Geteuid() == 0 && inside {
			t.Errorf("root: data directory %s is in a checkout the postgres user cannot reach", dataDir)
		}
		if os.Geteuid() != 0 && !inside {
			t.Errorf("data directory %s is outside the checkout %s", dataDir, checkout)
		}
	})
	if os.Geteuid() != 0 {
		return // the non-root case is the one above
	}
	t.Run("as a non-root user", func(t *testing.T) {
		t.Parallel()
		u := nonRootUser(t)
		checkout, _ := cloneUnder0700(t, u)
		dataDir := exercise(t, bin, checkout, u)
		if !strings.HasPrefix(dataDir, checkout+string(filepath.Separator)) {
			t.Errorf("data directory %s is outside the user's own checkout %s", dataDir, checkout)
		}
	})
}

func currentUser(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// buildDevdb builds this command into a directory every user can read.
func buildDevdb(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "quid-devdb-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "devdb")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cloneUnder0700 clones this repository into <0700 dir>/quid, owned by u
// when given, and returns the clone and its parent.
func cloneUnder0700(t *testing.T, u *user.User) (string, string) {
	t.Helper()
	parent, err := os.MkdirTemp("", "quid-devdb-home-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	checkout := filepath.Join(parent, `my "work" $HOME`, "quid") // a path the shell would misread
	if out, err := exec.Command("git", "clone", "--quiet", "--no-hardlinks", root, checkout).CombinedOutput(); err != nil {
		// Not a git checkout (an unpacked archive): go.mod is what devdb needs.
		t.Logf("git clone: %v: %s; copying go.mod instead", err, out)
		if err := os.MkdirAll(checkout, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(checkout, "go.mod"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if u != nil {
		if out, err := exec.Command("chown", "-R", u.Uid+":"+u.Gid, parent).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v: %s", err, out)
		}
	}
	return checkout, parent
}

// nonRootUser returns an unprivileged user, creating one when none exists.
func nonRootUser(t *testing.T) *user.User {
	t.Helper()
	const name = "quid-devdb-test"
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
			t.Skipf("cannot create a non-root user to test with (useradd: %v: %s)", err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	if u.Uid == "0" {
		t.Fatalf("%s is root", name)
	}
	return u
}

// devdb runs the command in checkout, as u when given.
func devdb(t *testing.T, bin, checkout string, u *user.User, arg string) (string, error) {
	t.Helper()
	var cmd *exec.Cmd
	if u != nil {
		cmd = exec.Command("runuser", "-u", u.Username, "--", "env", "HOME="+filepath.Dir(checkout), bin, arg)
	} else {
		cmd = exec.Command(bin, arg)
	}
	cmd.Dir = checkout
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if lines := strings.Split(msg, "\n"); strings.HasPrefix(lines[len(lines)-1], "devdb:") && len(lines[len(lines)-1]) > 0 {
			// The failure must be one line that says what to do.
			if !strings.Contains(lines[len(lines)-1], ";") && !strings.Contains(lines[len(lines)-1], " or ") {
				t.Errorf("failure message gives no way out: %s", lines[len(lines)-1])
			}
		}
		return "", &cmdError{err: err, stderr: msg}
	}
	return strings.TrimSpace(string(out)), nil
}

type cmdError struct {
	err    error
	stderr string
}

func (e *cmdError) Error() string { return e.err.Error() + ": " + e.stderr }

// exercise starts the cluster, queries it, checks that it is closed to
// other local users, checks status, stops it, and returns its data directory.
func exercise(t *testing.T, bin, checkout string, u *user.User) string {
	t.Helper()
	t.Cleanup(func() {
		_, _ = devdb(t, bin, checkout, u, "stop")
		if b, err := os.ReadFile(filepath.Join(checkout, ".devdb", "location")); err == nil {
			os.RemoveAll(strings.TrimSpace(string(b)))
		}
	})
	url, err := devdb(t, bin, checkout, u, "url")
	if err != nil {
		t.Fatalf("devdb url: %v", err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	var dataDir string
	err = db.QueryRow("SELECT current_setting('data_directory')").Scan(&dataDir)
	db.Close()
	if err != nil {
		t.Fatalf("query the cluster at %s: %v", url, err)
	}
	again, err := devdb(t, bin, checkout, u, "url")
	if err != nil || again != url {
		t.Fatalf("second devdb url: %q, %v; want %q", again, err, url)
	}
	checkPrivate(t, checkout, dataDir, url, u)

	// A cluster an older devdb left running: no password file (it trusted
	// every local user), its directory 0755 and its log 0644. url makes it
	// again, with a password, and closes both.
	cdir := filepath.Dir(dataDir)
	if err := os.Remove(filepath.Join(checkout, ".devdb", "password")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(cdir, "server.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	remade, err := devdb(t, bin, checkout, u, "url")
	if err != nil {
		t.Fatalf("devdb url on a cluster without a password: %v", err)
	}
	if remade == url {
		t.Errorf("devdb url on a cluster without a password printed the old URL")
	}
	checkPrivate(t, checkout, dataDir, remade, u)

	if st, err := devdb(t, bin, checkout, u, "status"); err != nil || !strings.HasPrefix(st, "running on 127.0.0.1:") {
		t.Fatalf("status while running: %q, %v", st, err)
	}
	if _, err := devdb(t, bin, checkout, u, "stop"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st, err := devdb(t, bin, checkout, u, "status"); err != nil || st != "stopped" {
		t.Fatalf("status after stop: %q, %v", st, err)
	}
	return dataDir
}

// checkPrivate checks what another local user could reach: the server
// without the password, the password file, the cluster's directory and its
// log.
func checkPrivate(t *testing.T, checkout, dataDir, rawURL string, u *user.User) {
	t.Helper()
	parsed, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("devdb url printed %q: %v", rawURL, err)
	}
	password, ok := parsed.User.Password()
	if !ok || len(password) < 20 {
		t.Errorf("devdb url %s carries no password of at least 20 characters", parsed.Redacted())
	}
	// Another user knows the port (it is in /proc/net/tcp) but not the
	// password: with the user name alone, or a wrong password, the server
	// refuses it.
	for _, who := range []*url.Userinfo{url.User("postgres"), url.UserPassword("postgres", "wrong")} {
		other := *parsed
		other.User = who
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := pgx.Connect(ctx, other.String())
		cancel()
		if err == nil {
			conn.Close(context.Background())
			t.Errorf("connected to %s without the password", other.Redacted())
			continue
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" { // invalid_password
			t.Errorf("connecting to %s without the password: %v; want the server's password refusal (28P01)", other.Redacted(), err)
		}
	}
	// With the printed URL it works, through pgx directly too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatalf("connect with the printed URL: %v", err)
	}
	conn.Close(ctx)

	// The password file: the invoking user's, for them alone.
	pwFile := filepath.Join(checkout, ".devdb", "password")
	if st, err := os.Stat(pwFile); err != nil {
		t.Errorf("password file: %v", err)
	} else {
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v; want 0600", pwFile, st.Mode().Perm())
		}
		wantUID := os.Geteuid()
		if u != nil {
			wantUID, _ = strconv.Atoi(u.Uid)
		}
		if uid := int(st.Sys().(*syscall.Stat_t).Uid); uid != wantUID {
			t.Errorf("%s is owned by uid %d; want the invoking user's %d", pwFile, uid, wantUID)
		}
		if b, err := os.ReadFile(pwFile); err != nil || strings.TrimSpace(string(b)) != password {
			t.Errorf("%s does not hold the URL's password (%v)", pwFile, err)
		}
	}
	if leftover, _ := filepath.Glob(filepath.Join(filepath.Dir(dataDir), "*.pw")); len(leftover) > 0 {
		t.Errorf("initdb's password file was left behind: %v", leftover)
	}

	// The cluster's directory and its server log: the server user's alone.
	dataSt, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	serverUID := dataSt.Sys().(*syscall.Stat_t).Uid
	for _, p := range []string{filepath.Dir(dataDir), filepath.Join(filepath.Dir(dataDir), "server.log")} {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v; others may read it", p, perm)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != serverUID {
			t.Errorf("%s is owned by uid %d; want the server's user, uid %d", p, uid, serverUID)
		}
	}
}
