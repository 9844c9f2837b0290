//go:build !openbsd

package openbsd

import "errors"

func apply(Plan) error { return errors.New("the OpenBSD launcher runs only on OpenBSD") }

func setCloexec(int) {}
