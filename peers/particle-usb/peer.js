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

// reopen waits for the device to come back on USB (a reset, a mode change) and opens it,
// as particle-cli does: try, wait, try again.
async function reopen(id, { dfu } = {}) {
	const deadline = Date.now() + 60000;
	for (;;) {
		try {
			const d = await usb.openDeviceById(id);
			if (dfu === undefined || d.isInDfuMode === dfu) {
				return d;
			}
			await d.close();
		} catch (e) {
			if (Date.now() > deadline) {
				throw e;
			}
		}
		await sleep(100);
	}
}

async function main() {
	const o = args();
	const id = o.device;

	await step('list', async () => {
		const devs = await usb.getDevices();
		const d = devs.find((x) => x.id === id);
		if (!d) {
			throw new Error(`device ${id} not among ${devs.map((x) => x.id).join(', ')}`);
		}
		return { id: d.id, type: d.type, platformId: d.platformId, dfu: d.isInDfuMode };
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
	await step('updateFirmware (bootloader)', async () => {
		await dev.updateFirmware(boot, { timeout: 120000 });
		return boot.length;
	});
	await dev.close().catch(() => {});
	dev = await reopen(id, { dfu: false });
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
	await step('readOverDfu', async () => {
		const back = await dev.readOverDfu({ altSetting: 0, startAddr: addr, size: app.length });
		return { size: back.length, same: Buffer.compare(back, app) === 0 };
	});
	await step('reset', () => dev.reset());
	await dev.close().catch(() => {});
	dev = await reopen(id, { dfu: false });
	await step('getDeviceMode (after the reset)', () => dev.getDeviceMode());
	await dev.close();
}

main().then(() => process.exit(0), (e) => {
	emit('fatal', null, e);
	process.exit(1);
});
