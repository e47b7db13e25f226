package modfile

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
)

// region is a run of bytes an image puts at consecutive addresses.
type region struct {
	Addr uint32
	Data []byte
}

func (r region) end() uint64 { return uint64(r.Addr) + uint64(len(r.Data)) }

// errHex is a .hex file that is not Intel HEX as a programmer would read it.
var errHex = errors.New("not a valid Intel HEX file")

// parseHex reads an Intel HEX image (record types 00 data, 01 end of file, 02 extended
// segment address, 03/05 start address, 04 extended linear address) into regions of
// consecutive bytes, in address order. Every record's checksum is checked; bytes given
// twice for one address must agree; the image may not exceed MaxFile bytes of data.
func parseHex(data []byte) ([]region, error) {
	var (
		base  uint32 // from type 02 or 04 records
		total int
		eof   bool
	)
	var runs []region
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if eof {
			return nil, fmt.Errorf("%w: line %d comes after the end-of-file record", errHex, n+1)
		}
		if line[0] != ':' {
			return nil, fmt.Errorf("%w: line %d does not start with ':'", errHex, n+1)
		}
		rec := make([]byte, hex.DecodedLen(len(line)-1))
		if _, err := hex.Decode(rec, line[1:]); err != nil || len(rec) < 5 {
			return nil, fmt.Errorf("%w: line %d is not a record", errHex, n+1)
		}
		count := int(rec[0])
		if len(rec) != 5+count {
			return nil, fmt.Errorf("%w: line %d says %d data bytes but holds %d", errHex, n+1, count, len(rec)-5)
		}
		var sum byte
		for _, b := range rec {
			sum += b
		}
		if sum != 0 {
			return nil, fmt.Errorf("%w: line %d fails its checksum", errHex, n+1)
		}
		offset := uint32(rec[1])<<8 | uint32(rec[2])
		payload := rec[4 : 4+count]
		switch rec[3] {
		case 0x00:
			if total += count; total > MaxFile {
				return nil, fmt.Errorf("%w: more than %d MB of data", errHex, MaxFile>>20)
			}
			addr := base + offset
			if uint64(addr)+uint64(count) > 1<<32 {
				return nil, fmt.Errorf("%w: line %d runs past the 4 GB address space", errHex, n+1)
			}
			runs = append(runs, region{Addr: addr, Data: append([]byte(nil), payload...)})
		case 0x01:
			eof = true
		case 0x02:
			if count != 2 {
				return nil, fmt.Errorf("%w: line %d: a segment address record holds 2 bytes", errHex, n+1)
			}
			base = (uint32(payload[0])<<8 | uint32(payload[1])) << 4
		case 0x04:
			if count != 2 {
				return nil, fmt.Errorf("%w: line %d: a linear address record holds 2 bytes", errHex, n+1)
			}
			base = (uint32(payload[0])<<8 | uint32(payload[1])) << 16
		case 0x03, 0x05:
			// Where execution starts: nothing to flash.
		default:
			return nil, fmt.Errorf("%w: line %d has record type %02X", errHex, n+1, rec[3])
		}
	}
	if !eof {
		return nil, fmt.Errorf("%w: no end-of-file record (the file is cut short)", errHex)
	}
	return mergeRuns(runs)
}

// mergeRuns sorts the data records by address and joins those that touch into regions;
// overlapping records must hold the same bytes.
func mergeRuns(runs []region) ([]region, error) {
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Addr < runs[j].Addr })
	var out []region
	for _, r := range runs {
		if len(r.Data) == 0 {
			continue
		}
		if len(out) > 0 {
			last := &out[len(out)-1]
			switch {
			case uint64(r.Addr) < last.end():
				over := int(last.end() - uint64(r.Addr))
				if over > len(r.Data) {
					over = len(r.Data)
				}
				at := int(r.Addr - last.Addr)
				if !bytes.Equal(last.Data[at:at+over], r.Data[:over]) {
					return nil, fmt.Errorf("%w: two records give different bytes for 0x%08X", errHex, r.Addr)
				}
				last.Data = append(last.Data, r.Data[over:]...)
				continue
			case uint64(r.Addr) == last.end():
				last.Data = append(last.Data, r.Data...)
				continue
			}
		}
		out = append(out, region{Addr: r.Addr, Data: r.Data})
	}
	return out, nil
}
