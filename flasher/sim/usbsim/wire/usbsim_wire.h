/*
 * usbsim_wire.h - the usbsim server's wire protocol, as the two C clients of it (the libusb
 * shim, shim/libusb_shim.c, and the umockdev bridge, umockdev/usbsim_umockdev.c) speak it.
 * The Go server (server.go) answers it; TestWireHeaderMatchesServer checks that the
 * operation numbers and the frame limit below are the server's.
 *
 * A frame is "u32 length | u8 op | payload", little-endian; length counts the op byte and
 * the payload. An answer is a frame with the same op whose payload starts with an i32
 * status (0 or a libusb error code).
 */
#ifndef USBSIM_WIRE_H
#define USBSIM_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

enum {
	OP_LIST = 1,
	OP_OPEN = 2,
	OP_CLOSE = 3,
	OP_CLAIM = 4,
	OP_RELEASE = 5,
	OP_SET_ALT = 6,
	OP_SET_CONFIG = 7,
	OP_GET_CONFIG = 8,
	OP_RESET = 9,
	OP_CONTROL = 10,
};

/* MAX_FRAME bounds a frame's length, so a broken peer cannot make a client allocate
 * gigabytes. */
#define MAX_FRAME (16u << 20)

static inline void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void put32(uint8_t *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* wire_io moves exactly n bytes: sent with MSG_NOSIGNAL (a server gone away is an error,
 * never a SIGPIPE in the program the shim is loaded into) or read; -1 on failure or at the
 * end of the stream. */
static inline int wire_io(int fd, uint8_t *p, size_t n, int sending)
{
	while (n > 0) {
		ssize_t r = sending ? send(fd, p, n, MSG_NOSIGNAL) : read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static inline int wire_write(int fd, const uint8_t *p, size_t n) { return wire_io(fd, (uint8_t *)p, n, 1); }
static inline int wire_read(int fd, uint8_t *p, size_t n) { return wire_io(fd, p, n, 0); }

/* wire_connect opens a connection to the server listening at path; -1 on failure. */
static inline int wire_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	if (!path || !path[0] || strlen(path) >= sizeof(sa.sun_path))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

#endif
