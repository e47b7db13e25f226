package plan

import (
	"fmt"
	"slices"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// item is one module the plan writes, with what ordering decides about it.
type item struct {
	m    *module.Module
	slot platform.Slot
	key  slotKey
	inst state.Module // what the device will report once it is written
	why  string
	// wipes are the regions overwritten with 0xFF before the module is written, so that
	// an older module Device OS would otherwise still find stops counting (see wipesFor).
	wipes []wipe

	// Set by order.
	method   platform.Method
	unmet    []module.Dependency // dependencies it is written ahead of (a broken cycle)
	relaxWhy string
}

func newItem(m *module.Module, slot platform.Slot, why string) *item {
	in := state.FromFile(nil, m)
	in.Start = slot.StartFor(uint32(m.Size()))
	return &item{m: m, slot: slot, key: keyOf(m.Function, m.Index), inst: in, why: why}
}

type edgeKind int

const (
	edgeNeed  edgeKind = iota // the successor needs the predecessor's new version
	edgeBreak                 // the predecessor replaces a module the successor's new version breaks
	edgeRule                  // a documented ordering rule
)

// graph holds the ordering constraints: preds[i][j] means item j goes before item i.
type graph struct {
	preds []map[int]edgeKind
}

func (g *graph) add(from, to int, k edgeKind) {
	if from == to {
		return
	}
	if old, ok := g.preds[to][from]; ok && old <= k {
		return
	}
	g.preds[to][from] = k
}

// reaches reports whether a path of constraints leads from a to b (a goes before b).
func (g *graph) reaches(a, b int) bool {
	seen := map[int]bool{}
	stack := []int{b}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == a {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		for p := range g.preds[n] {
			stack = append(stack, p)
		}
	}
	return false
}

// buildGraph derives the constraints from both dependencies of every module (each
// checked against its own function, index and version, and every node visited once -
// the two defects of particle-cli's walker) and from the installed modules the new
// versions would break, then adds the documented rules where they agree.
func buildGraph(initial *state.Device, items []*item, dir Direction) *graph {
	g := &graph{preds: make([]map[int]edgeKind, len(items))}
	for i := range g.preds {
		g.preds[i] = map[int]edgeKind{}
	}
	byKey := map[slotKey]int{}
	var apps []int
	for i, it := range items {
		byKey[it.key] = i
		if it.key.fn == platform.FuncUser {
			apps = append(apps, i)
		}
	}
	// need: a dependency the device does not meet yet, met by another module of the plan.
	for i, it := range items {
		for _, d := range it.m.Dependencies() {
			j, ok := byKey[keyOf(d.Function, d.Index)]
			if !ok || j == i || items[j].m.Version < d.Version {
				continue
			}
			if met, _ := initial.Meets(d); met {
				continue
			}
			g.add(j, i, edgeNeed)
		}
	}
	// break: the new version of j would break the installed C; C's own replacement
	// (for an application: any new application) goes first.
	for _, c := range initial.Installed() {
		ck := keyOf(c.Function, c.Index)
		if !c.Intact() || !state.BootChecked(c.Function) {
			continue
		}
		var repl []int
		if r, ok := byKey[ck]; ok {
			repl = []int{r}
		} else if ck.fn == platform.FuncUser {
			repl = apps
		}
		for _, dep := range c.Deps {
			d := dep.Need()
			j, ok := byKey[keyOf(d.Function, d.Index)]
			if !ok || items[j].m.Version >= d.Version {
				continue
			}
			if met, _ := initial.Meets(d); !met {
				continue // already broken: nothing to protect
			}
			for _, r := range repl {
				g.add(r, j, edgeBreak)
			}
		}
	}
	// rules: the reason goes with the module the rule moves.
	for _, r := range orderRules {
		if !slices.Contains(r.Directions, dir) {
			continue
		}
		s := -1
		for i, it := range items {
			if it.slot.Name == r.Slot {
				s = i
			}
		}
		if s < 0 || len(items) < 2 {
			continue
		}
		applied := false
		for o := range items {
			if o == s {
				continue
			}
			from, to := s, o
			if !r.First {
				from, to = o, s
			}
			if g.reaches(to, from) {
				continue // a dependency says otherwise; it wins
			}
			g.add(from, to, edgeRule)
			applied = true
		}
		if applied {
			items[s].why = joinWhy(items[s].why, r.Why)
		}
	}
	return g
}

// rankOf orders modules the constraints leave free.
func rankOf(it *item, dir Direction) int {
	table := upgradeRank
	if dir == DirDowngrade {
		table = downgradeRank
	}
	if i := slices.Index(table, it.slot.Name); i >= 0 {
		return i
	}
	return len(table)
}

// orderer walks the constraint graph (Kahn's algorithm) while keeping the flash model up
// to date, so each module gets a method that works in the state the device will be in
// when its turn comes.
type orderer struct {
	st    state.Device
	p     *platform.Platform
	model *state.Device
	items []*item
	g     *graph
	dir   Direction
	o     Options
	cur   state.Mode
	done  []bool
}

// order returns the items in the order to write them, each with its method.
func order(st state.Device, initial *state.Device, items []*item, dir Direction, o Options) ([]*item, []string, error) {
	g := buildGraph(initial, items, dir)
	ord := &orderer{st: st, p: st.Platform, model: cloneOf(initial), items: items, g: g, dir: dir, o: o,
		cur: st.Mode, done: make([]bool, len(items))}
	var out []*item
	var warn []string
	for len(out) < len(items) {
		c, ok := ord.pick(false)
		if !ok {
			c, ok = ord.pick(true)
		}
		if !ok {
			return nil, nil, ord.stuck()
		}
		it := items[c.i]
		it.method = c.method
		if len(c.relaxed) > 0 {
			it.unmet = ord.model.Unmet(it.inst, true)
			it.unmet = slices.DeleteFunc(it.unmet, func(d module.Dependency) bool { return keyOf(d.Function, d.Index) == it.key })
			w, serious := ord.relaxNote(it, c.relaxed)
			it.relaxWhy = w
			if serious {
				warn = append(warn, w)
			}
		}
		ord.done[c.i] = true
		for _, w := range it.wipes {
			ord.model.Invalidate(w.Address, w.Size)
		}
		ord.model.Write(it.inst)
		if c.method.UsesDFU() {
			ord.cur = state.ModeDFU
		} else {
			ord.cur = state.ModeNormal
		}
		out = append(out, it)
	}
	return out, warn, nil
}

type choice struct {
	i       int
	method  platform.Method
	switchM bool
	relaxed []int
}

// pick chooses the next item: among those whose predecessors are written (or, with
// relax, any whose remaining constraints may be broken because the device does not check
// a DFU write), those needing no mode switch first, then by rank.
func (o *orderer) pick(relax bool) (choice, bool) {
	var best *choice
	for i, it := range o.items {
		if o.done[i] {
			continue
		}
		var pending []int
		for j := range o.g.preds[i] {
			if !o.done[j] {
				pending = append(pending, j)
			}
		}
		if len(pending) > 0 && !relax {
			continue
		}
		m, ok := o.method(it)
		if !ok {
			continue
		}
		if len(pending) > 0 && (m == platform.MethodOTARegion || !m.UsesDFU()) {
			continue // Device OS validates these against what is installed: no jumping ahead
		}
		slices.Sort(pending)
		c := choice{i: i, method: m, switchM: m.UsesDFU() != (o.cur == state.ModeDFU), relaxed: pending}
		if best == nil || o.better(c, *best) {
			best = &c
		}
	}
	if best == nil {
		return choice{}, false
	}
	return *best, true
}

func (o *orderer) better(a, b choice) bool {
	if len(a.relaxed) != len(b.relaxed) {
		return len(a.relaxed) < len(b.relaxed)
	}
	if a.switchM != b.switchM {
		return !a.switchM
	}
	ra, rb := rankOf(o.items[a.i], o.dir), rankOf(o.items[b.i], o.dir)
	if ra != rb {
		return ra < rb
	}
	return a.i < b.i
}

// method picks how to write it now: in DFU mode a DFU-based method if the slot has one
// (the OTA region for a bootloader, so a device in DFU - perhaps because its Device OS is
// broken - is fixed without leaving DFU first); otherwise the slot's preferred method
// that works in the current state. With a watchdog, DFU-based methods always come first:
// DFU work can be cut into pieces that fit a window, a control-request update cannot.
func (o *orderer) method(it *item) (platform.Method, bool) {
	if o.cur == state.ModeDFU || o.o.Watchdog > 0 {
		for _, m := range it.slot.Methods {
			if m.UsesDFU() && o.usable(it, m) {
				return m, true
			}
		}
	}
	for _, m := range it.slot.Methods {
		if o.usable(it, m) {
			return m, true
		}
	}
	return 0, false
}

// usable reports whether m can write it in the modelled state.
func (o *orderer) usable(it *item, m platform.Method) bool {
	switch m {
	case platform.MethodDFU, platform.MethodDFUDropHeader:
		return true
	case platform.MethodOTARegion:
		if o.p.OTAFlagOffset == 0 {
			return false
		}
		if _, ok := o.p.AltByMemory(platform.MemDCT); !ok {
			return false
		}
		r, ok := o.p.OTARegionFor(o.model.SystemVersion())
		return ok && uint64(len(it.m.Data)) <= uint64(r.Size)
	case platform.MethodControl:
		since, known := controlUpdateSince[o.p.MCU]
		return known && o.model.Runnable() && o.model.SystemVersion() >= systemVersion(since) && o.validates(it)
	case platform.MethodYModem:
		return o.model.Runnable() && (o.st.YModem || o.model.SystemVersion() < systemVersion(ymodemUntil)) && o.validates(it)
	}
	return false
}

// validates is Device OS's own check of an update it receives (reference §6a): the
// module's dependencies are met by what is installed, and replacing the slot breaks no
// installed module that depends on it (MODULE_VALIDATION_DEPENDENCIES_FULL).
func (o *orderer) validates(it *item) bool {
	for _, dep := range it.inst.Deps {
		if keyOf(dep.Function, dep.Index) == it.key {
			continue
		}
		if ok, known := o.model.Meets(dep.Need()); !ok && known {
			return false
		}
	}
	for _, in := range o.model.Installed() {
		if keyOf(in.Function, in.Index) == it.key || !in.Intact() || !state.BootChecked(in.Function) {
			continue
		}
		for _, d := range in.Deps {
			if keyOf(d.Function, d.Index) == it.key && it.inst.Version < d.Version {
				return false
			}
		}
	}
	return true
}

// relaxNote explains a constraint the order had to break. Two DFU-written modules that
// need each other (a blank Gen3 device's system-part1 and SoftDevice) are harmless: DFU
// does not check dependencies and both land before Device OS starts again. A module
// written ahead of one only Device OS can install means safe mode in between, which the
// person should expect: that is a warning.
func (o *orderer) relaxNote(it *item, relaxed []int) (string, bool) {
	names := make([]string, len(relaxed))
	allDFU := true
	for i, j := range relaxed {
		names[i] = describe(o.items[j].m)
		s := o.items[j].slot
		if !s.Has(platform.MethodDFU) && !s.Has(platform.MethodDFUDropHeader) {
			allDFU = false
		}
	}
	if allDFU {
		return fmt.Sprintf("%s and %s depend on each other, so one has to go first; DFU writes are not checked against dependencies and both are written in the same DFU session.",
			words.UpperFirst(describe(it.m)), words.JoinAnd(names)), false
	}
	s := fmt.Sprintf("%s is written before %s although they depend on each other in a way no order satisfies",
		words.UpperFirst(describe(it.m)), words.JoinAnd(names))
	if len(it.unmet) > 0 {
		s = fmt.Sprintf("%s is written before %s, which it needs (%s), because that can only be installed once Device OS runs",
			words.UpperFirst(describe(it.m)), words.JoinAnd(names), depsText(it.unmet))
	}
	return s + ". DFU writes are not checked, so this works; until the rest is done the device may start in safe mode (breathing magenta), which is expected.", true
}

// stuck explains why nothing can be written next.
func (o *orderer) stuck() error {
	var left []string
	for i, it := range o.items {
		if !o.done[i] {
			left = append(left, describe(it.m))
		}
	}
	if !o.model.Runnable() {
		return fail(ErrNoMethod, "Give the complete set of Device OS files so Device OS can start, or install these parts some other way (SWD/JTAG).",
			"%s can only be installed by a running Device OS, and Device OS cannot start with what the device would have", words.JoinAnd(left))
	}
	return fail(ErrDependency, "Install an intermediate Device OS release first, or give the parts separately in an order that works.",
		"no order installs %s: Device OS refuses each of them until the others are installed", words.JoinAnd(left))
}
