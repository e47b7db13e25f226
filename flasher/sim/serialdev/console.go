package serialdev

import (
	"strings"
)

// Console texts, byte for byte as Device OS prints them (system_setup.cpp, system_info.cpp,
// system_update.cpp, system_ymodem.cpp).
const (
	WaitingLine     = "Waiting for the binary file to be sent ... (press 'a' to abort)"
	NoLongerLine    = "Serial/YModem flashing is no longer supported"
	RestartingLine  = "Restarting system to apply firmware update..."
	SuccessLine     = "Downloaded file successfully!"
	SizeTooBigLine  = "The file size is higher than the allowed space memory!"
	SaveFailedLine  = "Failed to save chunk!"
	AbortedLine     = "Aborted by user."
	ReceiveFailLine = "Failed to receive the file!"
)

// filterKey renames HAL keys for `i` as filter_key() does.
func filterKey(k string) string {
	switch k {
	case "imei":
		return "IMEI"
	case "iccid":
		return "ICCID"
	case "sn":
		return "Serial Number"
	case "ms":
		return "Device Secret"
	case "cellfw":
		return "Cell Radio Version"
	}
	return k
}

// handle is SystemSetupConsole::handle for the commands the flasher uses.
func (p *Port) handle(c byte) {
	switch c {
	case 'i':
		var b strings.Builder
		if extra := p.m.IdentifyExtra(); len(extra) > 0 {
			b.WriteString("Device ID: " + p.m.DeviceID() + "\r\n")
			for _, kv := range extra {
				b.WriteString(filterKey(kv.Key) + ": " + kv.Value + "\r\n")
			}
		} else {
			b.WriteString("Your device id is " + p.m.DeviceID() + "\r\n")
		}
		p.sendString(b.String())
	case 'm':
		p.sendString("Your device MAC address is\r\n" + p.m.MAC() + "\r\n")
	case 'f':
		p.sendString(WaitingLine + "\r\n")
		if p.m.YModemSupported() {
			p.flashUpdate()
			return
		}
		// Device OS 6.0+: refuse with four CANs, so a YMODEM sender stops at once.
		p.sleep(p.o.scaled(refusePause))
		p.send([]byte{can, can, can, can})
		p.sendString(NoLongerLine + "\r\n")
	case 'x':
		p.m.ExitListening()
	case 's':
		p.sendString(p.m.ModuleInfoJSON() + "\r\n")
	case 'v':
		p.sendString("system firmware version: " + p.m.SystemVersion() + "\n" + "\r\n")
	case 'L':
		p.m.SafeListen()
	case 'c':
		claimed := "no"
		if cl, ok := p.m.(Claimer); ok && cl.Claimed() {
			claimed = "yes"
		}
		p.sendString("Device claimed: " + claimed + "\r\n")
	case 'd':
		diag := "{}"
		if d, ok := p.m.(Diagnoser); ok {
			diag = d.DiagnosticsJSON()
		}
		p.sendString(diag + "\r\n")
	}
}
