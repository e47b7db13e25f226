package sim

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// A device image is everything a virtual device keeps across a power cycle: the bytes of
// every memory behind its DFU alt settings (internal flash, DCT, external flash) plus the
// few things the sim keeps outside them (the NCP's firmware version, Service Mode, the
// asset store). With it a killed sim is brought back as the same device: `pflash sim
// --image FILE --device-id ID`.
//
// The file is gzip of one JSON line (imageHeader) followed by each memory's bytes in the
// header's order. Any other file is taken as a raw internal-flash dump from the alt-0 base
// address, as `pflash sim --dump` writes.

const imageMagic = "particle-flasher sim image v1"

type imageHeader struct {
	Magic       string        `json:"magic"`
	Platform    string        `json:"platform"`
	DeviceID    string        `json:"device_id"`
	NCPVersion  uint16        `json:"ncp_version,omitempty"`
	ServiceMode bool          `json:"service_mode,omitempty"`
	Memories    []imageMemory `json:"memories"`
	Assets      []imageAsset  `json:"assets,omitempty"`
}

type imageMemory struct {
	Alt  uint8  `json:"alt"`
	Name string `json:"name"`
	Size int    `json:"size"`
}

type imageAsset struct {
	Name   string `json:"name"`
	Hash   string `json:"hash"`
	Size   int    `json:"size"`
	Module []byte `json:"module"`
}

// Image is a device's persistent state as read from an image file (ReadImage), given to
// New as Options.Image.
type Image struct {
	// Platform and DeviceID are those the image was written for ("" for a raw dump).
	Platform, DeviceID string
	mems               map[uint8][]byte
	raw                []byte // a raw internal-flash dump
	hdr                imageHeader
}

// ReadImage reads an image WriteImage (or a running sim with Options.ImagePath) wrote, or
// a raw internal-flash dump.
func ReadImage(path string) (*Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: image: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return &Image{raw: b}, nil // a raw dump
	}
	br := bufio.NewReader(zr)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("sim: image %s: header: %w", path, err)
	}
	var h imageHeader
	if err := json.Unmarshal(line, &h); err != nil || h.Magic != imageMagic {
		return nil, fmt.Errorf("sim: image %s: not a sim image (header %q)", path, bytes.TrimSpace(line[:min(len(line), 80)]))
	}
	img := &Image{Platform: h.Platform, DeviceID: h.DeviceID, mems: map[uint8][]byte{}, hdr: h}
	for _, m := range h.Memories {
		buf := make([]byte, m.Size)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("sim: image %s: memory %s: %w", path, m.Name, err)
		}
		img.mems[m.Alt] = buf
	}
	return img, nil
}

// load puts the image's memories into a freshly built device.
func (d *Device) loadImage(img *Image) error {
	if img.raw != nil {
		l := d.internal.Layout()
		if len(img.raw) != int(l.End()-l.Start()) {
			return fmt.Errorf("sim: a raw image must be the whole internal flash (%d bytes), not %d", l.End()-l.Start(), len(img.raw))
		}
		return d.internal.Load(l.Start(), img.raw)
	}
	if img.Platform != "" && img.Platform != d.p.Name {
		return fmt.Errorf("sim: the image is of a %s, not a %s", img.Platform, d.p.Name)
	}
	for alt, r := range d.mems {
		b, ok := img.mems[alt]
		if !ok {
			return fmt.Errorf("sim: the image has no memory for alt %d (%s)", alt, r.Name())
		}
		if err := r.Import(b); err != nil {
			return fmt.Errorf("sim: image: %w", err)
		}
	}
	if img.hdr.NCPVersion != 0 && d.p.HasNCP {
		d.ncp = &ncpState{version: img.hdr.NCPVersion}
	}
	d.override = img.hdr.ServiceMode
	if len(img.hdr.Assets) > 0 {
		d.assets = map[string]storedAsset{}
		for _, a := range img.hdr.Assets {
			d.assets[a.Name] = storedAsset{name: a.Name, hash: a.Hash, size: a.Size, module: a.Module}
		}
	}
	return nil
}

// WriteImage writes the device's image to path, atomically: a sim killed in the middle
// leaves the previous image whole.
func (d *Device) WriteImage(path string) error {
	h := imageHeader{Magic: imageMagic, Platform: d.p.Name, DeviceID: d.id}
	var alts []uint8
	for a := range d.mems {
		alts = append(alts, a)
	}
	sort.Slice(alts, func(i, j int) bool { return alts[i] < alts[j] })
	var datas [][]byte
	for _, a := range alts {
		b := d.mems[a].Export()
		datas = append(datas, b)
		h.Memories = append(h.Memories, imageMemory{Alt: a, Name: d.mems[a].Name(), Size: len(b)})
	}
	d.mu.Lock()
	if d.ncp != nil {
		h.NCPVersion = d.ncp.version
	}
	h.ServiceMode = d.override
	for _, a := range d.assets {
		h.Assets = append(h.Assets, imageAsset{Name: a.name, Hash: a.hash, Size: a.size, Module: a.module})
	}
	d.mu.Unlock()
	sort.Slice(h.Assets, func(i, j int) bool { return h.Assets[i].Name < h.Assets[j].Name })

	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("sim: write image: %w", err)
	}
	defer os.Remove(tmp.Name())
	zw, _ := gzip.NewWriterLevel(tmp, gzip.BestSpeed)
	line, _ := json.Marshal(h)
	_, err = zw.Write(append(line, '\n'))
	for _, b := range datas {
		if err == nil {
			_, err = zw.Write(b)
		}
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = tmp.Close()
	} else {
		_ = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("sim: write image %s: %w", path, err)
	}
	return nil
}

// imageSaveDelay batches the writes of a busy device: the image is written at most this
// long after a change (each DFU block and each control-request chunk is one), so a sim
// killed in the middle of a write keeps what it had written until a moment before, as
// flash that lost power would.
const imageSaveDelay = 100 * time.Millisecond

// imageSaver writes a device's image after its flash changes, and once more at Close.
type imageSaver struct {
	d     *Device
	path  string
	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	dirty bool
}

func startImageSaver(d *Device, path string) *imageSaver {
	s := &imageSaver{d: d, path: path, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	for _, r := range d.mems {
		r.SetOnChange(s.changed)
	}
	go s.loop()
	return s
}

func (s *imageSaver) changed() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *imageSaver) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		select {
		case <-s.stop:
			return
		case <-time.After(imageSaveDelay):
		}
		s.save()
	}
}

func (s *imageSaver) save() {
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = false
	s.mu.Unlock()
	if !dirty {
		return
	}
	if err := s.d.WriteImage(s.path); err != nil {
		slog.Warn("sim: image not saved", "device", s.d.id, "err", err)
	}
}

// close stops the saver and writes the image a last time.
func (s *imageSaver) close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		err = s.d.WriteImage(s.path)
	})
	return err
}

// errNoImagePlatform is returned when an image's platform is not in the table.
var errNoImagePlatform = errors.New("sim: the image's platform is unknown")

// PlatformOf returns the platform an image was written for (nil for a raw dump).
func (img *Image) PlatformOf() (*platform.Platform, error) {
	if img.Platform == "" {
		return nil, nil
	}
	p, ok := platform.ByName(img.Platform)
	if !ok {
		return nil, fmt.Errorf("%w: %q", errNoImagePlatform, img.Platform)
	}
	return p, nil
}
