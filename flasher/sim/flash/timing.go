package flash

import (
	"strings"
	"time"
)

// Timing is how long a flash part takes to erase a sector and to program bytes. Erase takes
// the sector size because parts with mixed sector sizes (STM32F2: 16, 64 and 128 KB) do not
// erase in time proportional to size.
type Timing struct {
	Erase              func(sectorSize uint32) time.Duration
	ProgramBytesPerSec float64
}

// EraseTime is the time to erase one sector of sectorSize bytes (0 for a zero Timing).
func (t Timing) EraseTime(sectorSize uint32) time.Duration {
	if t.Erase == nil {
		return 0
	}
	return t.Erase(sectorSize)
}

// ProgramTime is the time to program n bytes (0 for a zero Timing).
func (t Timing) ProgramTime(n int) time.Duration {
	if t.ProgramBytesPerSec <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(float64(n) / t.ProgramBytesPerSec * float64(time.Second))
}

// perUnit returns an erase function charging d for every started unit bytes, for parts whose
// erase granularity is uniform (a 16 KB "sector" on a 4 KB-page part costs four pages).
func perUnit(unit uint32, d time.Duration) func(uint32) time.Duration {
	return func(size uint32) time.Duration {
		if size == 0 {
			return 0
		}
		units := (uint64(size) + uint64(unit) - 1) / uint64(unit)
		return time.Duration(units) * d
	}
}

const kb = 1024

// The timings below are typical values (datasheets give a typical and a much larger maximum;
// a simulator that used the maxima would make every benchmark pessimistic by 3-4x).
var (
	// TimingSTM32F2 is the STM32F205 internal flash (Photon, P1, Electron): sector erase
	// about 0.25 s for 16 KB, 0.5 s for 64 KB and 1 s for 128 KB; word programming at
	// x32 parallelism about 250 KB/s.
	TimingSTM32F2 = Timing{
		Erase: func(size uint32) time.Duration {
			switch {
			case size == 0:
				return 0
			case size <= 16*kb:
				return 250 * time.Millisecond
			case size <= 64*kb:
				return 500 * time.Millisecond
			default:
				// 1 s per started 128 KB.
				return time.Duration((uint64(size)+128*kb-1)/(128*kb)) * time.Second
			}
		},
		ProgramBytesPerSec: 250 * kb,
	}

	// TimingNRF52840 is the nRF52840 internal flash (Gen3): 4 KB page erase about 85 ms,
	// 32-bit word writes of about 41 µs, i.e. about 100 KB/s.
	TimingNRF52840 = Timing{Erase: perUnit(4*kb, 85*time.Millisecond), ProgramBytesPerSec: 100 * kb}

	// TimingRTL872x is the RTL872x (P2, Photon 2, M SoM, Tracker M) "internal" flash, which
	// is an external QSPI NOR part mapped at 0x08000000. ASSUMPTION: Realtek publishes no
	// per-part figures for the module's flash, so this uses typical QSPI NOR values: 4 KB
	// sector erase about 45 ms, page programming about 250 KB/s.
	TimingRTL872x = Timing{Erase: perUnit(4*kb, 45*time.Millisecond), ProgramBytesPerSec: 250 * kb}

	// TimingExternalSPI is an external SPI/QSPI NOR flash (Gen3 alt 2, P1 serial flash):
	// 4 KB sector erase about 45 ms; page programming (256 B in about 0.7 ms plus command
	// overhead) about 250 KB/s.
	TimingExternalSPI = Timing{Erase: perUnit(4*kb, 45*time.Millisecond), ProgramBytesPerSec: 250 * kb}

	// TimingSTM32F1 is the STM32F103 internal flash (Core): 1 KB page erase about 20 ms,
	// 16-bit programming about 52 µs per half-word, i.e. about 38 KB/s.
	TimingSTM32F1 = Timing{Erase: perUnit(1*kb, 20*time.Millisecond), ProgramBytesPerSec: 38 * kb}
)

// LookupTiming returns the timing of an MCU's internal flash, named as the platform table
// (device-constants baseMcu) names it: "stm32f2xx", "nrf52840", "rtl872x", "stm32f1xx".
// The match ignores case, since the reference spells some of them "STM32F2xx".
func LookupTiming(mcu string) (Timing, bool) {
	switch strings.ToLower(strings.TrimSpace(mcu)) {
	case "stm32f2xx":
		return TimingSTM32F2, true
	case "nrf52840":
		return TimingNRF52840, true
	case "rtl872x":
		return TimingRTL872x, true
	case "stm32f1xx":
		return TimingSTM32F1, true
	}
	return Timing{}, false
}

// TimingFor is LookupTiming for callers that take the platform table as given: an unknown
// MCU gets the zero Timing (instant operations) rather than a guess, so a missing table
// entry shows up as an impossibly fast benchmark instead of plausible wrong numbers.
func TimingFor(mcu string) Timing {
	t, _ := LookupTiming(mcu)
	return t
}
