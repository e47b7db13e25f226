package ui

import (
	"sync"

	"fyne.io/fyne/v2"
)

// uiMu serialises the functions workers hand to the UI. On a real window fyne.Do already
// runs them one at a time on the main goroutine; Fyne's test driver runs them at once on
// the calling goroutine, so without this lock two workers (the device event pump and the
// LED animator) could touch widgets together in tests.
var uiMu sync.Mutex

// onUI is the one way a worker goroutine changes the window: every update goes through
// fyne.Do, in the order the worker sends them. It must not be called from the UI thread
// itself (a button callback): do the change directly there.
func onUI(fn func()) {
	uiMu.Lock()
	defer uiMu.Unlock()
	fyne.Do(fn)
}

// onUIWait is onUI that returns once fn has run, for tests that read widget state.
func onUIWait(fn func()) {
	uiMu.Lock()
	defer uiMu.Unlock()
	fyne.DoAndWait(fn)
}
