package serialdev

import (
	"strconv"
	"time"
)

// YMODEM bytes (system_ymodem.h).
const (
	soh    = 0x01 // 128-byte packet
	stx    = 0x02 // 1024-byte packet
	eot    = 0x04
	ack    = 0x06
	nak    = 0x15
	can    = 0x18 // two in a row abort
	crc16  = 'C'  // "send the next header/packet, CRC mode"
	abort1 = 'A'
	abort2 = 'a'

	packetHeader   = 3
	packetOverhead = 5
	packetSize     = 128
	packet1KSize   = 1024
	fileNameLength = 256
	fileSizeLength = 16
)

// receiver mirrors class YModem of system_ymodem.cpp@v5.9.0, state and all.
type receiver struct {
	p   *Port
	nak time.Duration

	data            [packet1KSize + packetOverhead]byte
	packetsReceived int
	errors          int
	fileDone        bool
	sessionDone     bool

	fileName   string
	fileLength int
	offset     int
}

const (
	rxPacket = 0  // a packet, EOT (length 0) or CAN CAN (length -1)
	rxError  = -1 // timeout or garbled packet
	rxAbort  = 1  // 'A'/'a' from the user
	rxIgnore = 2  // ' ' (answered with ACK)
)

func (r *receiver) receiveByte() (byte, bool) {
	c, err := r.p.in.readByte(r.nak)
	return c, err == nil
}

// receivePacket is YModem::receive_packet.
func (r *receiver) receivePacket() (status, length int) {
	c, ok := r.receiveByte()
	if !ok {
		return rxError, 0
	}
	size := 0
	switch c {
	case soh:
		size = packetSize
	case stx:
		size = packet1KSize
	case eot:
		return rxPacket, 0
	case can:
		if c2, ok := r.receiveByte(); ok && c2 == can {
			return rxPacket, -1
		}
		return rxError, 0
	case abort1, abort2:
		return rxAbort, 0
	case ' ':
		return rxIgnore, 0
	default:
		return rxError, 0
	}
	r.data[0] = c
	for i := 1; i < size+packetOverhead; i++ {
		b, ok := r.receiveByte()
		if !ok {
			return rxError, 0
		}
		r.data[i] = b
	}
	// The only integrity check Device OS makes: the CRC bytes are read and ignored.
	if r.data[1] != r.data[2]^0xff {
		return rxError, 0
	}
	return rxPacket, size
}

// parseFilePacket is YModem::parse_file_packet: name up to NUL, size up to ' ' (strtoul).
func (r *receiver) parseFilePacket(length int) {
	payload := r.data[packetHeader : packetHeader+length]
	i := 0
	for i < len(payload) && payload[i] != 0 && i < fileNameLength {
		i++
	}
	r.fileName = string(payload[:i])
	if i < len(payload) {
		i++ // the NUL
	}
	start := i
	for i < len(payload) && payload[i] != ' ' && i-start < fileSizeLength {
		i++
	}
	r.fileLength = strtoul(payload[start:i])
}

// strtoul parses leading decimal digits after optional blanks, stopping at anything else.
func strtoul(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, err := strconv.Atoi(string(b[i:j]))
	if err != nil {
		return 0
	}
	return n
}

// handlePacket is YModem::handle_packet.
func (r *receiver) handlePacket(length int) int {
	switch length {
	case -1: // abort by sender
		r.p.send([]byte{ack})
		return 0
	case 0: // EOT
		r.p.send([]byte{ack})
		r.fileDone = true
		return 1
	}
	if int(r.data[1]) != r.packetsReceived&0xff {
		r.p.send([]byte{nak})
		return 1
	}
	if r.packetsReceived == 0 {
		if r.data[packetHeader] != 0 {
			r.parseFilePacket(length)
			if err := r.p.m.BeginUpdate(r.fileLength); err != nil {
				r.p.send([]byte{can, can})
				return -1
			}
			r.offset = 0
			r.p.send([]byte{ack, crc16})
		} else {
			// Empty header ends the batch. No ACK yet: it is sent after validation.
			r.fileDone = true
			r.sessionDone = true
		}
	} else {
		chunk := append([]byte(nil), r.data[packetHeader:packetHeader+length]...)
		if err := r.p.m.SaveChunk(r.offset, chunk); err != nil {
			r.p.send([]byte{can, can})
			return -2
		}
		r.offset += length
		r.p.send([]byte{ack})
	}
	r.packetsReceived++
	return 1
}

// receiveFile is YModem::receive_file. Note Device OS sends 'C' only after an error or a
// NAK_TIMEOUT of silence, never proactively; MAX_ERRORS+1 errors in a row abort.
func (r *receiver) receiveFile() int {
	for !r.sessionDone {
		r.packetsReceived = 0
		r.fileDone = false
		for !r.fileDone {
			if r.p.stopped() {
				return 0
			}
			status, length := r.receivePacket()
			switch status {
			case rxPacket:
				r.errors = 0
				if res := r.handlePacket(length); res <= 0 {
					return res
				}
			case rxAbort:
				r.p.send([]byte{can, can})
				return -3
			case rxIgnore:
				r.p.send([]byte{ack})
			default:
				r.errors++
				r.p.send([]byte{crc16})
				if r.errors > MaxErrors {
					r.p.send([]byte{can, can})
					return 0
				}
			}
		}
	}
	return r.fileLength
}

// flashUpdate is Ymodem_Serial_Flash_Update plus system_fileTransfer's last line.
func (p *Port) flashUpdate() {
	r := &receiver{p: p, nak: p.o.scaled(NakTimeout)}
	size := r.receiveFile()
	if p.stopped() {
		return
	}
	ok := false
	if size > 0 {
		if code := p.m.FinishUpdate(); code == 0 {
			p.send([]byte{ack})
			p.sendString("\r\n" + SuccessLine + "\r\n" + "Name: " + r.fileName + "\r\n" +
				"Size: " + strconv.Itoa(size) + " bytes\r\n")
			p.sleep(p.o.scaled(successPause))
			ok = true
		} else {
			p.send([]byte{can, can})
			p.sendString("Validation failed: " + strconv.Itoa(code) + "\r\n")
		}
	} else {
		p.send([]byte{can, can})
	}
	switch {
	case size == -1:
		p.sendString(SizeTooBigLine + "\r\n")
	case size == -2:
		p.sendString(SaveFailedLine + "\r\n")
	case size == -3:
		p.sendString(AbortedLine + "\r\n")
	case size <= 0:
		p.sendString(ReceiveFailLine + "\r\n")
	}
	if ok {
		p.sendString(RestartingLine + "\r\n")
		p.m.Reset("update")
	}
}
