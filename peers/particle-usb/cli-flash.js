#!/usr/bin/env node
// particle-cli's `flash --local`, as particle-cli 3.x does it with particle-usb
// (src/lib/flash-helper.js flashFiles, src/cmd/usb-util.js reopenIn*Mode): the modules that
// go in normal mode (the bootloader) first, each after entering listening mode, by control
// requests (updateFirmware), then a 3 s wait for the device to apply it and a reopen that
// looks every 500 ms; then DFU mode (enterDfuMode, reopened the same way) and writeOverDfu
// of each remaining module at its start address on alt 0; finally a reset. The benchmark
// (flasher/run BenchmarkBoronJourney) runs it beside pflash on an identical virtual device.
//
// usage: node cli-flash.js --device ID [--normal FILE]... [--dfu FILE@ADDR]...
// Prints {"start_ms": <epoch ms when it began>, "end_ms": <when it finished>}.
'use strict';

const fs = require('fs');
const usb = require('particle-usb');

const FLASH_APPLY_DELAY = 3000; // flash-helper.js
const FLASH_TIMEOUT = 4 * 60000;
const REOPEN_TIMEOUT = 60000; // usb-util.js
const REOPEN_DELAY = 500;

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function args() {
	const o = { normal: [], dfu: [] };
	const a = process.argv.slice(2);
	for (let i = 0; i + 1 < a.length; i += 2) {
		const k = a[i].replace(/^--/, '');
		if (k === 'normal' || k === 'dfu') {
			o[k].push(a[i + 1]);
		} else {
			o[k] = a[i + 1];
		}
	}
	return o;
}

async function reopenInNormalMode(device, { reset } = {}) {
	const id = device.id;
	if (reset && device.isOpen) {
		await device.reset();
	}
	if (device.isOpen) {
		await device.close();
	}
	const start = Date.now();
	while (Date.now() - start < REOPEN_TIMEOUT) {
		await delay(REOPEN_DELAY);
		try {
			device = await usb.openDeviceById(id);
			if (device.isInDfuMode) {
				await device.close();
			} else if (device.isOpen) {
				return device;
			}
		} catch (e) {
			// reconnecting
		}
	}
	throw new Error('Unable to reconnect to the device');
}

async function reopenInDfuMode(device) {
	const id = device.id;
	const start = Date.now();
	while (Date.now() - start < REOPEN_TIMEOUT) {
		await delay(REOPEN_DELAY);
		try {
			await device.close();
			device = await usb.openDeviceById(id);
			if (!device.isInDfuMode) {
				await device.enterDfuMode();
				await device.close();
				device = await usb.openDeviceById(id);
			}
			return device;
		} catch (e) {
			// reconnecting
		}
	}
	throw new Error('Unable to reconnect to the device');
}

async function main() {
	const o = args();
	const startMs = Date.now();
	let device = await usb.openDeviceById(o.device);
	const steps = [
		...o.normal.map((f) => ({ mode: 'normal', data: fs.readFileSync(f) })),
		...o.dfu.map((s) => {
			const [f, addr] = s.split('@');
			return { mode: 'dfu', data: fs.readFileSync(f), addr: Number(addr) };
		})
	];
	try {
		for (const step of steps) {
			if (step.mode === 'normal') {
				if (device.isInDfuMode) {
					device = await reopenInNormalMode(device, { reset: true });
				}
				try {
					await device.enterListeningMode();
				} catch (e) {
					// already listening
				}
				await device.updateFirmware(step.data, { timeout: FLASH_TIMEOUT });
				await delay(FLASH_APPLY_DELAY);
				device = await reopenInNormalMode(device, { reset: false });
			} else {
				if (!device.isInDfuMode) {
					device = await reopenInDfuMode(device);
				}
				await device.writeOverDfu(step.data, { altSetting: 0, startAddr: step.addr });
			}
		}
	} finally {
		if (device.isOpen) {
			try {
				await device.reset();
			} catch (e) {
				// as particle-cli: ignored
			}
			await device.close();
		}
	}
	process.stdout.write(JSON.stringify({ start_ms: startMs, end_ms: Date.now() }) + '\n');
}

main().then(() => process.exit(0), (e) => {
	process.stderr.write(String(e && e.stack || e) + '\n');
	process.exit(1);
});
