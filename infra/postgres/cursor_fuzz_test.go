package postgres

import (
	"context"
	"testing"
	"time"
)

// FuzzOpenCursor feeds arbitrary cursors and scopes to the cursor decoder
// with a fixed key (no database): it must never panic and must accept only
// the exact text sealCursor wrote for that scope, so no other spelling of a
// position (another base64 of the same bytes, another scope's signature)
// reaches SQL. The seeds hold real cursors and near misses of them.
func FuzzOpenCursor(f *testing.F) {
	s := &Store{}
	key := []byte("fuzz-cursor-key-0123456789abcdef")
	s.cursorSecret.Store(&key)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, scope, cursor string) {
		at, id, err := s.decodeCursor(ctx, scope, cursor)
		if err != nil {
			if err != errBadCursor {
				t.Fatalf("cursor %q: %v, want errBadCursor", cursor, err)
			}
			return
		}
		parts, _ := s.openCursor(ctx, scope, cursor, 2)
		again, _ := s.sealCursor(ctx, scope, parts...)
		if again != cursor {
			t.Fatalf("accepted %q for scope %q, which the server writes as %q", cursor, scope, again)
		}
		if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil || id != parts[1] || at.IsZero() && parts[0] == "" {
			t.Fatalf("accepted %q as (%v, %q)", cursor, at, id)
		}
	})
}
