package state

// Identity is who a unit is beyond its device ID, as the device itself says: its serial
// number (control request 21, or listening mode's `i` on Gen3 and later), on cellular
// platforms its SIM's ICCID and its modem's IMEI (request 554, or `i`), and the NCP
// firmware's version where the platform has an NCP (request 31). Empty fields were not
// read or do not exist on the platform.
type Identity struct {
	SerialNumber string `json:"serial_number"`
	ICCID        string `json:"iccid"`
	IMEI         string `json:"imei"`
	NCPVersion   string `json:"ncp_version"`
}

// Known reports whether anything about the identity was read.
func (id Identity) Known() bool { return id != Identity{} }

// Fact is one labelled line of what is known about a device, for a panel or a listing.
type Fact struct {
	Label, Value string
}

// Facts lists the identity as labelled lines, the ones that were read, in the order a
// sticker and a SIM tray show them.
func (id Identity) Facts() []Fact {
	var out []Fact
	for _, f := range []Fact{{"Serial number", id.SerialNumber}, {"ICCID", id.ICCID}, {"IMEI", id.IMEI}, {"NCP firmware", id.NCPVersion}} {
		if f.Value != "" {
			out = append(out, f)
		}
	}
	return out
}
