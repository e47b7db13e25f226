// Package assets holds files the programs embed: the app icon and the udev rule that
// lets a normal user open Particle devices on Linux.
package assets

import _ "embed"

// Icon is the application icon (PNG), also named by the top-level FyneApp.toml.
//
//go:embed icon.png
var Icon []byte

// UdevRules is the text of 50-particle.rules, offered by `pflash doctor` and the app's
// permissions check when the USB or serial door reports an access error.
//
//go:embed 50-particle.rules
var UdevRules string

// UdevInstallCommand installs UdevRules system-wide; the rule file must be in the current directory.
const UdevInstallCommand = "sudo cp 50-particle.rules /etc/udev/rules.d/ && sudo udevadm control --reload && sudo udevadm trigger"
