/*
 * shimcheck.c - exercises the libusb shim's list/descriptor/open/transfer/free
 * paths. The usbsim tests compile it together with shim/libusb_shim.c under
 * AddressSanitizer + LeakSanitizer and run it against a Server with two
 * devices, so any leak or bad access in the shim fails the test.
 * Prints one line per device: "<vid>:<pid> <serial> <alts> <claim-alt-release status>".
 */
#include <libusb-1.0/libusb.h>
#include <stdio.h>
#include <string.h>

static int done_count;

static void LIBUSB_CALL on_done(struct libusb_transfer *t)
{
	if (t->status == LIBUSB_TRANSFER_COMPLETED)
		done_count++;
}

static int check_async(libusb_context *ctx, libusb_device_handle *h)
{
	unsigned char buf[LIBUSB_CONTROL_SETUP_SIZE + 6];
	struct libusb_transfer *t = libusb_alloc_transfer(0);
	struct timeval tv = { 1, 0 };
	int before = done_count, r;

	libusb_fill_control_setup(buf, 0xA1, 3, 0, 0, 6);
	libusb_fill_control_transfer(t, h, buf, on_done, NULL, 1000);
	r = libusb_submit_transfer(t);
	if (r == 0)
		libusb_handle_events_timeout_completed(ctx, &tv, NULL);
	libusb_free_transfer(t);
	return r == 0 && done_count == before + 1 ? 0 : -1;
}

int main(void)
{
	libusb_context *ctx;
	libusb_device **list;
	ssize_t n, i;
	int round;

	if (libusb_init(&ctx) != 0)
		return 1;
	for (round = 0; round < 3; round++) {
		n = libusb_get_device_list(ctx, &list);
		if (n < 0)
			return 2;
		for (i = 0; i < n; i++) {
			struct libusb_device_descriptor d;
			struct libusb_config_descriptor *c;
			libusb_device_handle *h;
			unsigned char serial[64];
			int alts = 0, k, st = -100;

			libusb_get_device_descriptor(list[i], &d);
			for (k = 0; k < d.bNumConfigurations; k++) {
				if (libusb_get_config_descriptor(list[i], (uint8_t)k, &c) != 0)
					return 3;
				alts += c->interface[0].num_altsetting;
				libusb_free_config_descriptor(c);
			}
			if (libusb_get_active_config_descriptor(list[i], &c) == 0)
				libusb_free_config_descriptor(c);
			if (libusb_open(list[i], &h) != 0)
				return 4;
			if (libusb_get_string_descriptor_ascii(h, d.iSerialNumber, serial, sizeof(serial)) < 0)
				return 5;
			if (libusb_claim_interface(h, 0) == 0) {
				st = libusb_set_interface_alt_setting(h, 0, 1);
				st |= libusb_release_interface(h, 0);
			}
			if (check_async(ctx, h) != 0)
				return 6;
			libusb_close(h);
			if (round == 0)
				printf("%04x:%04x %s %d %d\n", d.idVendor, d.idProduct, serial, alts, st);
		}
		if (n > 0) { /* a reference kept past the list, as dfu-util does */
			libusb_device *kept = libusb_ref_device(list[0]);
			libusb_free_device_list(list, 1);
			libusb_unref_device(kept);
		} else {
			libusb_free_device_list(list, 1);
		}
	}
	libusb_exit(ctx);

	/* the default context */
	if (libusb_init(NULL) != 0)
		return 7;
	n = libusb_get_device_list(NULL, &list);
	if (n >= 0)
		libusb_free_device_list(list, 1);
	libusb_exit(NULL);
	return 0;
}
