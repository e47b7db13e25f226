package module

import "encoding/binary"

// Located is a module found in a flash image, at the address its own header names.
type Located struct {
	Addr   uint32
	Module *Module
}

// Locate finds the modules in a flash image (a debugger's .hex, a flash dump): image is
// the flash from address base on. A module is taken where a header's
// module_start_address is the address of the module it heads, with the header at one
// of the offsets modules put it (see preferredOffsets), and where the module it announces
// fits in the image and parses as a module of a known platform. Found modules do not
// overlap; the search goes on after each. A module whose CRC fails is still returned
// (Validate says so), so that the person hears why it cannot be written.
//
// Anything written without its module header (a DROP_MODULE_INFO SoftDevice, as
// Particle's restore images hold it) is not found: nothing in it says what it is.
func Locate(base uint32, image []byte) []Located {
	offsets := map[uint32]int{}
	for _, o := range preferredOffsets {
		offsets[uint32(o)] = o
	}
	var out []Located
	for h := 0; h+PrefixSize <= len(image); h += 4 {
		addr := base + uint32(h)
		start := binary.LittleEndian.Uint32(image[h:])
		off, ok := offsets[addr-start]
		if !ok || start > addr || h < off {
			continue
		}
		s := h - off
		end := binary.LittleEndian.Uint32(image[h+4:])
		if end <= start {
			continue
		}
		size := uint64(end) - uint64(start) + CRCSize
		if size > maxPlausibleSize || size < uint64(off+PrefixSize+CRCSize) || uint64(s)+size > uint64(len(image)) {
			continue
		}
		m, err := Parse(append([]byte(nil), image[s:s+int(size)]...))
		if err != nil || m.HeaderOffset != off || m.Size() != size {
			continue
		}
		out = append(out, Located{Addr: start, Module: m})
		// Go on right after this module (the loop adds 4); a module always ends past its
		// own header, so this only ever moves forward.
		h = max(h, (s+int(size)+3)&^3-4)
	}
	return out
}
