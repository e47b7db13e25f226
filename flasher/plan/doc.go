// Package plan turns what a device has (its platform, mode, modules and protection state)
// and what it should get (a set of parsed module files, resolved by the caller, with an
// optional user application) into an ordered Plan: the steps that take the device there
// without ever leaving it in a state that neither normal mode nor DFU mode can reach.
//
// The planner exists because the ordering is where Particle's own tools go wrong
// (shared/docs/prior-art.md §2): particle-cli's dependency walker never skips visited
// nodes and checks dependency2 against dependency1's fields, device-os-flash-util's is
// version-agnostic, and neither knows about stepping stones, safe-mode healing or the
// Electron's file names. Here the order comes from a real topological sort over both
// dependencies of every module, with two kinds of edge:
//
//   - need: a module whose dependency the device does not meet yet comes after the
//     module of the plan that meets it (system-part2 2.3.1 after system-part1 2.3.1);
//   - break: a module whose new version would break the dependency of a module already
//     installed comes after that module's own replacement (on a downgrade, system-part1
//     goes after the user app and system-part2 that need the newer one), because Device
//     OS refuses a control-request update that breaks an installed module, and because a
//     device whose parts disagree starts in safe mode, where the cloud re-upgrades it.
//
// The documented rules that are not dependencies (user app first on a downgrade, P2
// prebootloader first on an upgrade and last on a downgrade) are extra edges, added only
// where they agree with the dependencies. Cycles (the Tracker's system-part1 needs NCP 7,
// which needs system-part1 3.0) are broken only at a DFU write, which the device does not
// validate, and the plan says so on the step. While ordering, the planner keeps a model of
// the device's flash so it knows, after each write, whether Device OS can still start (so
// control requests work) and what the LED will show when the device restarts.
//
// A Plan is data: every step has a stable ID, the exact bytes, alt setting and address it
// writes, the mode it needs, the LED the person should see with remedies when the LED says
// otherwise (flasher/led), an estimate from per-MCU flash timings, and a Done check
// against a device's real state, so a runner can execute, journal and resume it (and
// re-planning from a re-read device skips what is already installed). With a watchdog
// window everything DFU can write goes over DFU, cut into sector-aligned pieces that each
// fit one window; Plan.Windows says how many windows that takes.
//
// Platform facts come from flasher/platform; the planner's own facts (ordering ranks,
// stepping stones, protection floor, control-request support, flash timings) are tables
// in rules.go, each with its source in shared/docs/particle-reference.md.
package plan
