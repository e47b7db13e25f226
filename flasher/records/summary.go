package records

import (
	"sort"
	"time"
)

// Unit is one device in a lot: its latest run, how many runs finished, and on which
// stations.
type Unit struct {
	Latest Row `json:"latest"`
	// Runs counts its finished runs; Interrupted its runs cut short.
	Runs        int `json:"runs"`
	Interrupted int `json:"interrupted"`
	// Stations lists where it was flashed, in order.
	Stations []string `json:"stations"`
	// AtTarget: its latest finished run ended ok or already at the target.
	AtTarget bool `json:"at_target"`
}

// Summary is a lot as `pflash report` shows it.
type Summary struct {
	Units int `json:"units"`
	// Per counts units by their latest run's result, platform, station and Device OS
	// after (before, for a run that failed).
	PerResult   map[string]int `json:"per_result"`
	PerPlatform map[string]int `json:"per_platform"`
	PerStation  map[string]int `json:"per_station"`
	PerDeviceOS map[string]int `json:"per_device_os"`
	// NotAtTarget lists units whose latest run did not end at the target; FlashedAgain
	// units with more than one finished run; OnTwoStations units flashed on more than one
	// station (the same device ID on two benches).
	NotAtTarget   []string `json:"not_at_target"`
	FlashedAgain  []string `json:"flashed_again"`
	OnTwoStations []string `json:"on_two_stations"`
	First, Last   time.Time
}

// Units groups rows by device, in the order each unit first appears.
func Units(rows []Row) ([]string, map[string]*Unit) {
	var order []string
	units := map[string]*Unit{}
	for _, r := range rows {
		u := units[r.DeviceID]
		if u == nil {
			u = &Unit{}
			units[r.DeviceID] = u
			order = append(order, r.DeviceID)
		}
		if r.Station != "" && !contains(u.Stations, r.Station) {
			u.Stations = append(u.Stations, r.Station)
		}
		switch {
		case Finished(r.Result):
			u.Runs++
			u.Latest = r
		case r.Result == ResultInterrupted:
			u.Interrupted++
			if u.Runs == 0 {
				u.Latest = r
			}
		default:
			if u.Runs == 0 {
				u.Latest = r
			}
		}
	}
	for _, u := range units {
		u.AtTarget = u.Latest.Result == ResultOK || u.Latest.Result == ResultAlready
	}
	return order, units
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Summarize counts a set of rows (a lot, a station, a period) unit by unit.
func Summarize(rows []Row) Summary {
	s := Summary{PerResult: map[string]int{}, PerPlatform: map[string]int{}, PerStation: map[string]int{}, PerDeviceOS: map[string]int{}}
	order, units := Units(rows)
	for _, r := range rows {
		if s.First.IsZero() || r.Started.Before(s.First) {
			s.First = r.Started
		}
		if end := r.Time; end.After(s.Last) {
			s.Last = end
		}
	}
	s.Units = len(order)
	for _, id := range order {
		u := units[id]
		l := u.Latest
		s.PerResult[l.Result]++
		s.PerPlatform[l.Platform]++
		s.PerStation[l.Station]++
		os := l.After
		if l.Result != ResultOK && l.Result != ResultAlready {
			os = l.Before
		}
		if os == "" {
			os = "unknown"
		}
		s.PerDeviceOS[os]++
		if !u.AtTarget {
			s.NotAtTarget = append(s.NotAtTarget, id)
		}
		if u.Runs > 1 {
			s.FlashedAgain = append(s.FlashedAgain, id)
		}
		if len(u.Stations) > 1 {
			s.OnTwoStations = append(s.OnTwoStations, id)
		}
	}
	return s
}

// Keys returns a count map's keys, largest count first.
func Keys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
