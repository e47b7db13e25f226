package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// NewMainContent builds the main window's content. Until the device list lands it
// explains what the app will do, so a person who opens it knows what is coming.
func NewMainContent(opts Options) fyne.CanvasObject {
	title := widget.NewLabelWithStyle("Particle Flasher", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	body := widget.NewLabel("Plug in a Particle device (Photon, Electron, Argon, Boron, B SoM, Tracker, P2, M SoM, ...)\n" +
		"over USB. Coming next: live device list, module versions and diagnosis,\n" +
		"guided upgrade, downgrade and rescue with RGB LED guidance, and factory flashing.")
	body.Alignment = fyne.TextAlignCenter
	status := widget.NewLabel("No device support yet: this is the placeholder window of the foundation build.")
	if opts.Demo {
		status.SetText("Demo mode requested: virtual devices arrive with the virtual-device milestone.")
	}
	status.Alignment = fyne.TextAlignCenter
	return container.NewCenter(container.NewVBox(title, body, status))
}
