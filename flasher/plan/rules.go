package plan

import (
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/module"
)

// The planner's facts, as tables. Sources as in shared/docs/particle-reference.md:
// DOCS = docs.particle.io versions.md, CLI = particle-cli, DR = Device Restore.

// upgradeRank and downgradeRank break ties between modules the dependencies leave
// unordered, by slot name (reference §6b "Recommended order"): upgrades go bootloader,
// system parts in file order (the Electron's files 1, 2, 3 = indices 3, 1, 2 satisfy the
// chain that way), SoftDevice, user app, NCP last (it takes minutes); downgrades go user
// app first, system parts in reverse file order (the order OTA downgrades use), then
// bootloader and SoftDevice. Rescues use the upgrade order.
var (
	upgradeRank = []string{"prebootloader-mbr", "prebootloader-part1", "bootloader",
		"system-part1", "system-part2", "system-part3", "mono", "softdevice", "user-part", "ncp-firmware"}
	downgradeRank = []string{"user-part", "system-part3", "system-part2", "system-part1", "mono",
		"bootloader", "softdevice", "ncp-firmware", "prebootloader-part1", "prebootloader-mbr"}
)

// orderRule puts one slot before (First) or after every other module of the plan. Rules
// are weaker than dependencies: a rule edge that would contradict one is left out.
type orderRule struct {
	Directions []Direction
	Slot       string
	First      bool
	Why        string
}

var orderRules = []orderRule{
	{
		Directions: []Direction{DirDowngrade}, Slot: "user-part", First: true,
		Why: "On a downgrade the application built for the older Device OS goes first: an application " +
			"that needs the newer Device OS would put the device in safe mode, and the cloud's safe-mode " +
			"healer would then upgrade it again (docs.particle.io versions.md).",
	},
	{
		Directions: []Direction{DirUpgrade, DirRescue, DirSame}, Slot: "prebootloader-part1", First: true,
		Why: "The P2 prebootloader goes first on an upgrade and last on a downgrade, as Device Restore does.",
	},
	{
		Directions: []Direction{DirDowngrade}, Slot: "prebootloader-part1", First: false,
		Why: "The P2 prebootloader goes first on an upgrade and last on a downgrade, as Device Restore does.",
	},
}

// steppingStone is a documented downgrade that must stop at Via on the way.
type steppingStone struct {
	Platforms []string // platform names
	// FromAtLeast and ToAtMost are Device OS versions (inclusive bounds) of the device's
	// and the target's system parts.
	FromAtLeast, ToAtMost string
	Via                   string
	Why                   string
}

var steppingStones = []steppingStone{
	{
		// DOCS versions.md: "Boron LTE (BRN402) and B SoM B402 ... from 2.0.0 or later to
		// 1.5.1 or earlier must first downgrade to 1.5.2". Boron 2G/3G share the platform
		// ID, so every Boron gets the stop; it costs them nothing.
		Platforms:   []string{"boron", "bsom"},
		FromAtLeast: "2.0.0-alpha.1", ToAtMost: "1.5.1", Via: "1.5.2",
		Why: "Device OS 2.0.0 and later run the LTE modem at 460800 baud, a setting the modem keeps; " +
			"1.5.1 and earlier cannot talk to it at that speed. Device OS 1.5.2 resets it: install 1.5.2, " +
			"let the device connect to the cellular network once (breathing cyan), then go on to the older version.",
	},
}

// Device Protection (Device OS 6.x) forbids going below Device OS 6.1.1: system part
// 6101, bootloader 3001 (CLI flash-helper.js maintainDeviceProtection; reference §6c.10).
const (
	protectedMinSystem     = 6101
	protectedMinBootloader = 3001
	protectedMinName       = "6.1.1"
)

// controlUpdateSince is the first system module version, per MCU family, whose Device OS
// takes firmware over USB control requests 250-253 (reference §4, §2d: Gen2 from 0.8.0,
// Gen3 from 0.9.0 - the first Gen3 batches could only be upgraded in DFU).
var controlUpdateSince = map[string]string{
	"stm32f2xx": "0.8.0-rc.1",
	"nrf52840":  "0.9.0",
	"rtl872x":   "",
}

// ymodemUntil: Device OS 6.0.0 removed listening-mode YMODEM (reference §3a, §6c.8).
const ymodemUntil = "6.0.0"

// gen2ControlDFUSince: particle-cli refuses to switch a Gen2 device running Device OS
// older than 2.0.0 into DFU with a control request (validateDFUSupport); the 14400-baud
// serial trigger works on every version (reference §2d).
const gen2ControlDFUSince = "2.0.0"

// systemVersion converts a Device OS name from the tables above into its system module
// version; the tables only name releases the embedded version table knows.
func systemVersion(name string) uint16 {
	if name == "" {
		return 0
	}
	v, ok := module.SystemModuleVersion(name)
	if !ok {
		panic("plan: rules table names unknown Device OS " + name)
	}
	return v
}

// flashTiming is how long a flash part takes to erase a sector and to program bytes.
// Erase takes the sector size because the STM32F2's 16, 64 and 128 KB sectors do not
// erase in time proportional to size.
type flashTiming struct {
	erase   func(sectorSize uint32) time.Duration
	program float64 // bytes per second
}

const kib = 1024

func perPage(page uint32, d time.Duration) func(uint32) time.Duration {
	return func(size uint32) time.Duration {
		return time.Duration((uint64(size)+uint64(page)-1)/uint64(page)) * d
	}
}

// Typical datasheet values, the same the simulator charges (flasher/sim/flash timing.go):
// STM32F205 sector erase ~0.25 s (16 KB), 0.5 s (64 KB), 1 s (128 KB), programming
// ~250 KB/s; nRF52840 4 KB page erase 85 ms, ~100 KB/s; RTL872x QSPI NOR 4 KB erase
// 45 ms, ~250 KB/s (an assumption: Realtek publishes no figures); external SPI NOR (Gen3
// alt 2) 45 ms per 4 KB, ~250 KB/s; STM32F103 1 KB page 20 ms, ~38 KB/s.
var (
	internalTiming = map[string]flashTiming{
		"stm32f2xx": {erase: func(size uint32) time.Duration {
			switch {
			case size <= 16*kib:
				return 250 * time.Millisecond
			case size <= 64*kib:
				return 500 * time.Millisecond
			}
			return time.Duration((uint64(size)+128*kib-1)/(128*kib)) * time.Second
		}, program: 250 * kib},
		"nrf52840":  {erase: perPage(4*kib, 85*time.Millisecond), program: 100 * kib},
		"rtl872x":   {erase: perPage(4*kib, 45*time.Millisecond), program: 250 * kib},
		"stm32f1xx": {erase: perPage(1*kib, 20*time.Millisecond), program: 38 * kib},
	}
	externalTiming = flashTiming{erase: perPage(4*kib, 45*time.Millisecond), program: 250 * kib}
)

// Time the host side and the device's restarts add (prior-art.md §4; reference §2d, §4).
const (
	// usbPerBlock: SET_ADDRESS, DNLOAD and GETSTATUS round trips per 4 KB DFU block.
	usbPerBlock = 3 * time.Millisecond
	// enterDFUTime: control request, the device's 1 s delay, reset, DFU enumeration.
	enterDFUTime = 4 * time.Second
	// rebootTime: leaving DFU until Device OS runs and enumerates again (1.5-3 s to
	// re-enumerate, plus Device OS start-up).
	rebootTime = 5 * time.Second
	// restartTime: a reset and re-enumeration alone.
	restartTime = 3 * time.Second
	// controlSlowdown: a control-request update moves a byte about 10 times slower than
	// DFU (particle-cli flash-helper NORMAL_MULTIPLIER).
	controlSlowdown = 10
	// controlSetup: listening mode and the start-update request before the first byte.
	controlSetup = 2 * time.Second
	// ncpApplyTime: the ESP32 NCP update Device OS runs after the transfer "can take a
	// few minutes" (CLI and device-os-flash-util allow 4).
	ncpApplyTime = 3 * time.Minute
	// dctWriteTime: a one-byte DCT write (read-modify-write of the DCT by the bootloader).
	dctWriteTime = 100 * time.Millisecond
	// serviceModeTime: the control request that ends Device Protection's Service Mode.
	serviceModeTime = 2 * time.Second
	// setupDoneTime: marking setup done and leaving listening mode (two control requests
	// and the network stack starting over).
	setupDoneTime = 3 * time.Second
	// verifyTime: re-reading the module table.
	verifyTime = 3 * time.Second
	// watchdogMargin is kept free in every watchdog window for timing noise.
	watchdogMarginDiv = 10
)
