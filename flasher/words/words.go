// Package words holds the few rules of English that the engine's messages and the app's
// texts share, so a list or a count reads the same in a plan's refusal, an LED hint and a
// button label.
package words

import (
	"fmt"
	"strings"
)

// JoinAnd joins phrases as a sentence does: "a", "a and b", "a, b and c"; "" for none.
func JoinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// Count says how many of a thing, with the plural people expect: "1 module", "3 modules".
// Things whose plural is not a trailing "s" do not belong here.
func Count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// UpperFirst starts a sentence with a capital letter (ASCII, as every message here is).
func UpperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// LowerFirst lets a sentence continue another one.
func LowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
