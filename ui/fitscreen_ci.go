//go:build ci

package ui

import "fyne.io/fyne/v2"

// fitScreen is a no-op under Fyne's test driver, which has no screen.
func fitScreen(fyne.Window) {}
