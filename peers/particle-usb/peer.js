#!/usr/bin/env node
// Particle's own host library against one device: every request particle-usb makes for
// particle-cli, run the way particle-usb runs it, each answer printed as one JSON line
// ({"request": ..., "got": ..., "error": ...}) for the Go test that checks them against
// the virtual device's own state and flash (flasher/sim particleusb_test.go).
//
// usage: node peer.js --device ID --app FILE --app-addr N --bootloader FILE
'use strict';

const fs = require('fs');
const usb = require('particle-usb');

function args() {
	const out = {};
	const a = process.argv.slice(2);
	for (let i = 0; i + 1 < a.length; i += 2) {
		out[a[i].replace(/^--/, '')] = a[i + 1];
	}
	return out;
}

function emit(request, got, error) {
	const line = { request, got };
	if (error) {
		line.error = String(error.message || error);
	}
	process.stdout.write(JSON.stringify(line) + '\n');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// step runs one request and prints its answer; a failure is printed too and does not stop
// the others unless it leaves nothing to go on.
async function step(request, fn) {
	try {
		const got = await fn();
		emit(request, got === undefined ? 'ok' : got);
		return got;
	} catch (e) {
		emit(request, null, e);
		return undefined;
	}
}

// address is where a device is on the bus: a reset or a mode change gives it another.
const address = (d) => {
	const u = d.usbDevice && d.usbDevice.internalObject;
	return u ? `${u.busNumber}/${u.deviceAddress}` : '';
};

// reopen waits for the device to come back on USB (a reset, a mode change: somewhere other
// than `left`) and opens it, as particle-cli does: look, wait a little, look again.
async function reopen(id, { dfu, left } = {}) {
	const deadline = Date.now() + 60000;
	let last;
	while (Date.now() < deadline) {
		try {
			for (const d of await usb.getDevices()) {
				if (left && address(d) === left) {
					continue;
				}
				await d.open();
				if (d.id === id && (dfu === undefined || d.isInDfuMode === dfu)) {
					return d;
				}
				await d.close();
			}
		} catch (e) {
			last = e;
		}
		await sleep(100);
	}
	throw last || new Error(`device ${id} did not come back`);
}

async function main() {
	const o = args();
	const id = o.device;

	await step('list', async () => {
		const seen = [];
		for (const d of await usb.getDevices()) {
			await d.open(); // the ID is the USB serial number, read on open
			seen.push(d.id);
			const me = d.id === id ? { id: d.id, type: d.type, platformId: d.platformId, dfu: d.isInDfuMode } : null;
			await d.close();
			if (me) {
				return me;
			}
		}
		throw new Error(`device ${id} not among ${seen.join(', ')}`);
	});
	let dev = await reopen(id);
	emit('open', { id: dev.id, type: dev.type, dfu: dev.isInDfuMode });
	await step('getDeviceId', () => dev.getDeviceId());
	await step('getSerialNumber', () => dev.getSerialNumber());
	emit('firmwareVersion', dev.firmwareVersion);
	await step('getDeviceMode', () => dev.getDeviceMode());
	await step('getFirmwareModuleInfo', async () => {
		const mods = await dev.getFirmwareModuleInfo();
		return mods.map((m) => ({ type: m.type, index: m.index, version: m.version, size: m.size, store: m.store, validityErrors: m.validityErrors }));
	});
	await step('enterListeningMode', () => dev.enterListeningMode());
	await step('getDeviceMode (listening)', () => dev.getDeviceMode());
	await step('leaveListeningMode', () => dev.leaveListeningMode());
	await step('getDeviceMode (left listening)', async () => {
		// Device OS leaves listening mode by itself a moment after the request.
		for (let i = 0; i < 50; i++) {
			const m = await dev.getDeviceMode();
			if (m !== 'LISTENING') {
				return m;
			}
			await sleep(100);
		}
		return dev.getDeviceMode();
	});

	// The bootloader by control requests in normal mode, as particle-cli flashes one.
	const boot = fs.readFileSync(o.bootloader);
	let at = address(dev);
	await step('updateFirmware (bootloader)', async () => {
		await dev.updateFirmware(boot, { timeout: 120000 });
		return boot.length;
	});
	await dev.close().catch(() => {});
	dev = await reopen(id, { dfu: false, left: at }); // Device OS restarts to install it
	await step('getFirmwareModuleInfo (after the update)', async () => {
		const mods = await dev.getFirmwareModuleInfo();
		return mods.map((m) => ({ type: m.type, index: m.index, version: m.version, size: m.size, store: m.store, validityErrors: m.validityErrors }));
	});

	await step('enterDfuMode', () => dev.enterDfuMode());
	await dev.close().catch(() => {});
	dev = await reopen(id, { dfu: true });
	emit('open (DFU)', { id: dev.id, dfu: dev.isInDfuMode });
	const app = fs.readFileSync(o.app);
	const addr = Number(o['app-addr']);
	await step('writeOverDfu', async () => {
		await dev.writeOverDfu(app, { altSetting: 0, startAddr: addr });
		return app.length;
	});
	// Right after a download the DFU state is dfuDNLOAD_IDLE, where particle-usb sends
	// CLRSTATUS: Device OS's Gen3 and RTL872x bootloaders STALL it (no transition defined)
	// and enter dfuERROR, so the first read fails there; the second starts from dfuERROR,
	// which CLRSTATUS clears.
	const readBack = async () => {
		const back = await dev.readOverDfu({ altSetting: 0, startAddr: addr, size: app.length });
		return { size: back.length, same: Buffer.compare(back, app) === 0 };
	};
	await step('readOverDfu (right after the write)', readBack);
	await step('readOverDfu (again)', readBack);
	at = address(dev);
	await step('reset', () => dev.reset());
	await dev.close().catch(() => {});
	dev = await reopen(id, { dfu: false, left: at });
	await step('getDeviceMode (after the reset)', () => dev.getDeviceMode());
	await dev.close();
}

main().then(() => process.exit(0), (e) => {
	emit('fatal', null, e);
	process.exit(1);
});
