package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/infra/auth"
)

func tokenCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "member", "member, marketer, partner or admin")
	sub := fs.String("sub", "", "subject: the member id, or the recipient id for a partner (required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quid token --role R --sub S [--ttl 1h]\n\nMints an HS256 development token signed with QUID_JWT_SECRET (and QUID_JWT_ISSUER/QUID_JWT_AUDIENCE when set).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := getenv("QUID_JWT_SECRET")
	switch {
	case secret == "":
		return errors.New("token: QUID_JWT_SECRET is not set")
	case *sub == "":
		return errors.New("token: --sub is required")
	case !app.Role(*role).Valid():
		return fmt.Errorf("token: --role %q is not member, marketer, partner or admin", *role)
	case *ttl <= 0:
		return errors.New("token: --ttl must be positive")
	}
	tok, err := auth.Mint(secret, app.Principal{Subject: *sub, Role: app.Role(*role)}, *ttl,
		getenv("QUID_JWT_ISSUER"), getenv("QUID_JWT_AUDIENCE"), time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
