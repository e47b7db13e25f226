package listen

import (
	"strings"
	"testing"
)

// FuzzReplies feeds arbitrary bytes to every parser of what a device in listening mode
// says (`i`, `v`, `m`, `s`): nothing may panic, and every refusal is one line.
func FuzzReplies(f *testing.F) {
	f.Add([]byte(electronJSON + "\r\n"))
	f.Add([]byte(emptySlotJSON + "\r\n"))
	f.Add([]byte("Your device id is 0123456789abcdef01234567\r\n"))
	f.Add([]byte("Device ID: 0123456789abcdef01234567\r\nIMEI: 123456789012345\r\nICCID: 89014103211118510720\r\n"))
	f.Add([]byte("system firmware version: 4.1.0\r\n"))
	f.Add([]byte("Your device MAC address is\r\n01:23:45:67:89:ab\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		oneLine := func(what string, err error) {
			if err != nil && (err.Error() == "" || strings.Contains(err.Error(), "\n")) {
				t.Fatalf("%s: refusal is not one line: %q", what, err.Error())
			}
		}
		_, err := parseIdentity(b)
		oneLine("i", err)
		_, err = parseVersion(b)
		oneLine("v", err)
		_, err = parseMAC(b)
		oneLine("m", err)
		info, err := parseSystemInfo(b)
		oneLine("s", err)
		if err == nil && info == nil {
			t.Fatal("s: no error and no module info")
		}
		_ = identityComplete(b)
		_ = versionComplete(b)
		_ = macComplete(b)
		_ = describeReply(b)
	})
}
