package main

import (
	"database/sql"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

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

// exercise starts the cluster, queries it, checks status, stops it, and
// returns its data directory.
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
