/*
 * usbsim-umockdev: the umockdev door onto the virtual devices.
 *
 * It runs a umockdev testbed (libumockdev) and mirrors the devices a usbsim server
 * lists into it: each one becomes a sysfs node (/sys/bus/usb/devices/B-P with the
 * attributes libusb and libudev read: busnum, devnum, speed, descriptors, ids,
 * strings) and a /dev/bus/usb/BBB/DDD file whose usbdevfs ioctls (control URBs,
 * synchronous control transfers, claim, release, set interface and configuration,
 * reset) this program answers by asking the usbsim server, over the same wire
 * protocol the libusb shim speaks (flasher/sim/usbsim/doc.go). A program run with
 * LD_PRELOAD=libumockdev-preload.so.0 and UMOCKDEV_DIR set to the testbed sees them
 * as real USB devices, whatever libusb it carries (static or not). A device that
 * re-enumerates (a reset, DFU mode) is a udev "remove" then "add".
 *
 * The serial door: the devices' ttys (their ptys) appear as /dev/ttyACM* with the sysfs
 * node and udev properties cdc_acm gives them, added and removed by commands on standard
 * input (below, at command()).
 *
 * Usage: usbsim-umockdev SOCKET
 * Prints "UMOCKDEV_DIR=<dir>" and then "READY" once the first listing is mirrored;
 * runs until its standard input closes or it gets SIGTERM/SIGINT.
 *
 * Every client (an open() of a device file) gets its own connection to the server,
 * so claims are per process as with the kernel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <glib-unix.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <umockdev.h>

#include "usbsim_wire.h" /* the operations, the frame limit, little-endian and socket I/O */

/* libusb error codes the server answers with */
enum { LERR_IO = -1, LERR_ACCESS = -3, LERR_NO_DEVICE = -4, LERR_NOT_FOUND = -5, LERR_BUSY = -6, LERR_TIMEOUT = -7, LERR_PIPE = -9 };

#define MAX_DEVS 64

static const char *sock_path;
static UMockdevTestbed *tb;
static char *root_dir;

/* rpc sends one request and returns the status; *out (g_free) gets the data. */
static int32_t rpc(int fd, uint8_t op, const uint8_t *payload, size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t hdr[5];
	put32(hdr, (uint32_t)(len + 1));
	hdr[4] = op;
	if (out)
		*out = NULL;
	if (fd < 0 || wire_write(fd, hdr, 5) < 0 || (len && wire_write(fd, payload, len) < 0))
		return LERR_NO_DEVICE;
	uint8_t rh[9];
	if (wire_read(fd, rh, 4) < 0)
		return LERR_NO_DEVICE;
	uint32_t n = get32(rh);
	if (n < 5 || n > MAX_FRAME || wire_read(fd, rh + 4, 5) < 0)
		return LERR_NO_DEVICE;
	size_t dlen = n - 5;
	uint8_t *data = g_malloc(dlen + 1);
	if (dlen && wire_read(fd, data, dlen) < 0) {
		g_free(data);
		return LERR_NO_DEVICE;
	}
	if (out) {
		*out = data;
		*outlen = dlen;
	} else
		g_free(data);
	return (int32_t)get32(rh + 5);
}

static int32_t key_rpc(int fd, uint8_t op, uint32_t key, const uint8_t *extra, size_t extralen)
{
	uint8_t buf[16];
	put32(buf, key);
	memcpy(buf + 4, extra, extralen);
	return rpc(fd, op, buf, 4 + extralen, NULL, NULL);
}

/* control runs one control transfer; data holds wLength bytes (OUT data, or room for IN). */
static int32_t control(int fd, uint32_t key, const uint8_t setup[8], uint8_t *data, uint32_t timeout_ms)
{
	uint16_t wlen = get16(setup + 6);
	int in = setup[0] & 0x80;
	size_t plen = 4 + 8 + 4 + (in ? 0 : wlen);
	uint8_t *p = g_malloc(plen);
	put32(p, key);
	memcpy(p + 4, setup, 8);
	put32(p + 12, timeout_ms);
	if (!in && wlen)
		memcpy(p + 16, data, wlen);
	uint8_t *out;
	size_t outlen;
	int32_t st = rpc(fd, OP_CONTROL, p, plen, &out, &outlen);
	g_free(p);
	if (st >= 0 && in)
		memcpy(data, out, MIN(outlen, (size_t)wlen));
	g_free(out);
	return st;
}

static int errno_of(int32_t st)
{
	switch (st) {
	case LERR_PIPE: return EPIPE;
	case LERR_NO_DEVICE: return ENODEV;
	case LERR_NOT_FOUND: return ENOENT;
	case LERR_BUSY: return EBUSY;
	case LERR_TIMEOUT: return ETIMEDOUT;
	case LERR_ACCESS: return EACCES;
	}
	return EIO;
}

/* ---- races in umockdev's uevent sender ---------------------------------------------- */

/*
 * umockdev_testbed_uevent sends each uevent to every program's udev monitor socket it finds
 * by globbing the testbed's event[0-9]* files, and exits this whole process when a send
 * fails: when a program closed its monitor (or exited) between the glob and the connect,
 * its socket is unlinked and connect fails with ENOENT ("sendmsg_one: cannot connect to
 * client's event socket", umockdev 0.17 to its current source); when it closed it just
 * after, sendmsg fails with ECONNREFUSED; when it does not read its monitor, with EAGAIN
 * (Debian's 0.17.16; later versions skip the first and retry the second). udevd outlives
 * its listeners, and so must the bridge: to the uevent sender, a vanished socket is one
 * that refused (which it skips), and a send refused or to a full monitor is made (the
 * event is lost to that program, as udevd's is to a monitor whose buffer is full).
 */
static int is_event_socket(const void *addr, socklen_t len)
{
	const struct sockaddr_un *a = addr;
	size_t n = root_dir ? strlen(root_dir) : 0;
	return n && a && len > offsetof(struct sockaddr_un, sun_path) && a->sun_family == AF_UNIX &&
	       n + 6 <= len - offsetof(struct sockaddr_un, sun_path) && memcmp(a->sun_path, root_dir, n) == 0 &&
	       memcmp(a->sun_path + n, "/event", 6) == 0;
}

/* The C library's own connect and sendmsg, found once before main (and before any thread). */
static int (*libc_connect)(int, const struct sockaddr *, socklen_t);
static ssize_t (*libc_sendmsg)(int, const struct msghdr *, int);

__attribute__((constructor)) static void find_libc(void)
{
	libc_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
	libc_sendmsg = (ssize_t (*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int r = libc_connect(fd, addr, len);
	if (r < 0 && errno == ENOENT && is_event_socket(addr, len))
		errno = ECONNREFUSED;
	return r;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t r = libc_sendmsg(fd, msg, flags);
	/* The sender names the socket it connected to but leaves msg_namelen 0; the path in
	 * it is NUL-terminated, and only its first bytes are compared. */
	socklen_t namelen = msg->msg_namelen ? msg->msg_namelen : (socklen_t)sizeof(struct sockaddr_un);
	if (r < 0 && (errno == ECONNREFUSED || errno == EAGAIN) && is_event_socket(msg->msg_name, namelen)) {
		r = 0;
		for (size_t i = 0; i < msg->msg_iovlen; i++)
			r += (ssize_t)msg->msg_iov[i].iov_len;
	}
	return r;
}

/* ---- the mirrored devices ----------------------------------------------------------- */

struct simdev {
	uint32_t key;
	uint8_t bus, addr, speed;
	char sysname[32];
	char devnode[64];
	char *syspath;
	uint8_t *desc; /* device descriptor + configuration descriptors, as sysfs shows them */
	size_t desclen;
	int seen;
	gint refs; /* the device table's and each client's */
	gint gone; /* unplugged: clients still holding its file get ENODEV */
};

static struct simdev *devs[MAX_DEVS];

static struct simdev *simdev_ref(struct simdev *d)
{
	g_atomic_int_inc(&d->refs);
	return d;
}

static void simdev_unref(struct simdev *d)
{
	if (!g_atomic_int_dec_and_test(&d->refs))
		return;
	g_free(d->desc);
	g_free(d->syspath);
	g_free(d);
}

/*
 * A device node's ioctl socket is attached once and kept for the bridge's life; a device
 * plugged in on the node takes it over, and one unplugged leaves it answering ENODEV.
 * Detaching it would close the socket's listener, and a program that opened the node a
 * moment before and whose connection was still waiting to be accepted would see the
 * connection reset; umockdev's preload then kills the program ("Error communicating with
 * ioctl socket"), where the kernel would have given it an error for a vanished device.
 * Nodes are created and looked up on the main thread; the handlers run on the testbed's
 * worker thread and read only their node's device, under node_lock.
 */
struct node {
	UMockdevIoctlBase *handler;
	struct simdev *cur; /* the device on the node now, or NULL */
};

static GHashTable *nodes; /* device node path -> struct node */
static GMutex node_lock;

typedef void (*node_setup)(UMockdevIoctlBase *handler, struct node *n);

/* node_get returns devnode's node, attaching its ioctl socket (set up by setup) the first time. */
static struct node *node_get(const char *devnode, node_setup setup)
{
	struct node *n = g_hash_table_lookup(nodes, devnode);
	if (n)
		return n;
	n = g_new0(struct node, 1);
	n->handler = umockdev_ioctl_base_new();
	setup(n->handler, n);
	GError *err = NULL;
	umockdev_testbed_attach_ioctl(tb, devnode, n->handler, &err);
	if (err) {
		g_printerr("usbsim-umockdev: attach %s: %s\n", devnode, err->message);
		g_error_free(err);
	}
	/* The testbed's worker thread creates the socket a moment after attach_ioctl, and a
	 * program must not find the device before it can talk to it. */
	char *sock = g_strconcat(root_dir, "/ioctl", devnode, NULL);
	for (int i = 0; i < 2000 && !g_file_test(sock, G_FILE_TEST_EXISTS); i++)
		g_usleep(500);
	g_free(sock);
	g_hash_table_insert(nodes, g_strdup(devnode), n);
	return n;
}

static void node_set(struct node *n, struct simdev *d)
{
	g_mutex_lock(&node_lock);
	n->cur = d;
	g_mutex_unlock(&node_lock);
}

/* per open() of a device file */
struct client {
	int fd; /* own connection to the server */
	uint32_t key;
	struct simdev *dev;
	GQueue done; /* client addresses of completed, unreaped URBs */
	size_t readpos;
};

static void client_free(gpointer p)
{
	struct client *c = p;
	if (c->fd >= 0) {
		key_rpc(c->fd, OP_CLOSE, c->key, NULL, 0);
		close(c->fd);
	}
	if (c->dev)
		simdev_unref(c->dev);
	g_queue_clear(&c->done);
	g_free(c);
}

/* on_connected: an open() of the node; the client talks to the device on it now, if any. */
static void on_connected(UMockdevIoctlBase *h, UMockdevIoctlClient *cl, gpointer user)
{
	struct node *n = user;
	struct client *c = g_new0(struct client, 1);
	g_queue_init(&c->done);
	c->fd = -1;
	g_mutex_lock(&node_lock);
	if (n->cur)
		c->dev = simdev_ref(n->cur);
	g_mutex_unlock(&node_lock);
	if (c->dev) {
		c->key = c->dev->key;
		c->fd = wire_connect(sock_path);
	}
	if (c->fd >= 0 && key_rpc(c->fd, OP_OPEN, c->key, NULL, 0) < 0) {
		close(c->fd);
		c->fd = -1;
	}
	g_object_set_data_full(G_OBJECT(cl), "usbsim-client", c, client_free);
}

static void on_vanished(UMockdevIoctlBase *h, UMockdevIoctlClient *cl, gpointer user)
{
	g_object_set_data(G_OBJECT(cl), "usbsim-client", NULL);
}

static UMockdevIoctlData *resolve(UMockdevIoctlData *d, size_t off, size_t len)
{
	GError *err = NULL;
	UMockdevIoctlData *r = umockdev_ioctl_data_resolve(d, off, len, &err);
	if (err)
		g_error_free(err);
	return r;
}

static void done(UMockdevIoctlClient *cl, long res, int err) { umockdev_ioctl_client_complete(cl, res, err); }

static int32_t iface_rpc(struct client *c, uint8_t op, unsigned a, unsigned b)
{
	uint8_t x[2] = {(uint8_t)a, (uint8_t)b};
	return key_rpc(c->fd, op, c->key, x, 2);
}

static gboolean on_ioctl(UMockdevIoctlBase *h, UMockdevIoctlClient *cl, gpointer user)
{
	struct client *c = g_object_get_data(G_OBJECT(cl), "usbsim-client");
	gulong req = umockdev_ioctl_client_get_request(cl);
	UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(cl);
	int32_t st;
	if (!c || c->fd < 0) {
		done(cl, -1, ENODEV);
		return TRUE;
	}
	switch (req) {
	case USBDEVFS_SUBMITURB: {
		UMockdevIoctlData *ud = resolve(arg, 0, sizeof(struct usbdevfs_urb));
		if (!ud) {
			done(cl, -1, EFAULT);
			return TRUE;
		}
		struct usbdevfs_urb *u = (struct usbdevfs_urb *)ud->data;
		if (u->type != USBDEVFS_URB_TYPE_CONTROL || u->buffer_length < 8) {
			done(cl, -1, EINVAL); /* the virtual devices only have the control pipe in use */
			return TRUE;
		}
		UMockdevIoctlData *bd = resolve(ud, offsetof(struct usbdevfs_urb, buffer), (size_t)u->buffer_length);
		if (!bd) {
			done(cl, -1, EFAULT);
			return TRUE;
		}
		u = (struct usbdevfs_urb *)ud->data;
		uint8_t *b = bd->data;
		if ((size_t)get16(b + 6) + 8 > (size_t)u->buffer_length) {
			done(cl, -1, EINVAL);
			return TRUE;
		}
		st = control(c->fd, c->key, b, b + 8, 5000);
		u->status = st < 0 ? -errno_of(st) : 0;
		u->actual_length = st < 0 ? 0 : st;
		if (st == LERR_NO_DEVICE) {
			done(cl, -1, ENODEV);
			return TRUE;
		}
		g_queue_push_tail(&c->done, GSIZE_TO_POINTER(ud->client_addr));
		done(cl, 0, 0);
		return TRUE;
	}
	case USBDEVFS_REAPURB:
	case USBDEVFS_REAPURBNDELAY: {
		if (g_queue_is_empty(&c->done)) {
			done(cl, -1, EAGAIN);
			return TRUE;
		}
		UMockdevIoctlData *slot = resolve(arg, 0, sizeof(void *));
		if (!slot) {
			done(cl, -1, EFAULT);
			return TRUE;
		}
		gsize addr = GPOINTER_TO_SIZE(g_queue_pop_head(&c->done));
		memcpy(slot->data, &addr, sizeof addr);
		done(cl, 0, 0);
		return TRUE;
	}
	case USBDEVFS_DISCARDURB:
		done(cl, -1, EINVAL); /* URBs complete when submitted: nothing is pending */
		return TRUE;
	case USBDEVFS_CONTROL: {
		UMockdevIoctlData *td = resolve(arg, 0, sizeof(struct usbdevfs_ctrltransfer));
		if (!td) {
			done(cl, -1, EFAULT);
			return TRUE;
		}
		struct usbdevfs_ctrltransfer *t = (struct usbdevfs_ctrltransfer *)td->data;
		uint8_t setup[8] = {t->bRequestType, t->bRequest};
		put16(setup + 2, t->wValue);
		put16(setup + 4, t->wIndex);
		put16(setup + 6, t->wLength);
		uint8_t *data = NULL;
		if (t->wLength) {
			UMockdevIoctlData *dd = resolve(td, offsetof(struct usbdevfs_ctrltransfer, data), t->wLength);
			if (!dd) {
				done(cl, -1, EFAULT);
				return TRUE;
			}
			data = dd->data;
			t = (struct usbdevfs_ctrltransfer *)td->data;
		}
		uint8_t scratch[1];
		st = control(c->fd, c->key, setup, data ? data : scratch, t->timeout ? t->timeout : 5000);
		done(cl, st < 0 ? -1 : st, st < 0 ? errno_of(st) : 0);
		return TRUE;
	}
	case USBDEVFS_CLAIMINTERFACE:
	case USBDEVFS_RELEASEINTERFACE: {
		UMockdevIoctlData *id = resolve(arg, 0, sizeof(unsigned int));
		if (!id) {
			done(cl, -1, EFAULT);
			return TRUE;
		}
		st = iface_rpc(c, req == USBDEVFS_CLAIMINTERFACE ? OP_CLAIM : OP_RELEASE, *(unsigned int *)id->data, 0);
		done(cl, st < 0 ? -1 : 0, st < 0 ? errno_of(st) : 0);
		return TRUE;
	}
	case USBDEVFS_DISCONNECT_CLAIM: {
		UMockdevIoctlData *id = resolve(arg, 0, sizeof(struct usbdevfs_disconnect_claim));
		if (!id) {
			done(cl, -1, EFAULT);
			return TRUE;
		}
		st = iface_rpc(c, OP_CLAIM, ((struct usbdevfs_disconnect_claim *)id->data)->interface, 0);
		done(cl, st < 0 ? -1 : 0, st < 0 ? errno_of(st) : 0);
		return TRUE;
	}
	case USBDEVFS_SETINTERFACE: {
		UMockdevIoctlData *sd = resolve(arg, 0, sizeof(struct usbdevfs_setinterface));
		if (!sd) {
			done(cl, -1, EFAULT);
			return TRUE;
		}
		struct usbdevfs_setinterface *s = (struct usbdevfs_setinterface *)sd->data;
		st = iface_rpc(c, OP_SET_ALT, s->interface, s->altsetting);
		done(cl, st < 0 ? -1 : 0, st < 0 ? errno_of(st) : 0);
		return TRUE;
	}
	case USBDEVFS_SETCONFIGURATION: {
		UMockdevIoctlData *cd = resolve(arg, 0, sizeof(int));
		if (!cd) {
			done(cl, -1, EFAULT);
			return TRUE;
		}
		uint8_t x[4];
		put32(x, (uint32_t) * (int *)cd->data);
		st = key_rpc(c->fd, OP_SET_CONFIG, c->key, x, 4);
		done(cl, st < 0 ? -1 : 0, st < 0 ? errno_of(st) : 0);
		return TRUE;
	}
	case USBDEVFS_RESET:
		st = key_rpc(c->fd, OP_RESET, c->key, NULL, 0);
		done(cl, st < 0 ? -1 : 0, st < 0 ? errno_of(st) : 0);
		return TRUE;
	case USBDEVFS_GET_CAPABILITIES: {
		UMockdevIoctlData *cd = resolve(arg, 0, sizeof(uint32_t));
		if (cd)
			memset(cd->data, 0, sizeof(uint32_t));
		done(cl, cd ? 0 : -1, cd ? 0 : EFAULT);
		return TRUE;
	}
	case USBDEVFS_CONNECTINFO: {
		UMockdevIoctlData *cd = resolve(arg, 0, sizeof(struct usbdevfs_connectinfo));
		if (cd) {
			struct usbdevfs_connectinfo *ci = (struct usbdevfs_connectinfo *)cd->data;
			ci->devnum = c->dev->addr;
			ci->slow = c->dev->speed == 1;
		}
		done(cl, cd ? 0 : -1, cd ? 0 : EFAULT);
		return TRUE;
	}
#ifdef USBDEVFS_GET_SPEED
	case USBDEVFS_GET_SPEED:
		done(cl, c->dev->speed, 0);
		return TRUE;
#endif
	case USBDEVFS_GETDRIVER:
	case USBDEVFS_IOCTL:
		done(cl, -1, ENODATA); /* no kernel driver holds the interfaces */
		return TRUE;
	case USBDEVFS_CLEAR_HALT:
		done(cl, 0, 0);
		return TRUE;
	}
	done(cl, -1, ENOTTY);
	return TRUE;
}

/* read() of the device file gives the descriptors, as usbfs does. */
static gboolean on_read(UMockdevIoctlBase *h, UMockdevIoctlClient *cl, gpointer user)
{
	struct client *c = g_object_get_data(G_OBJECT(cl), "usbsim-client");
	UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(cl);
	if (!c || !c->dev || g_atomic_int_get(&c->dev->gone)) {
		done(cl, -1, ENODEV);
		return TRUE;
	}
	size_t n = MIN((size_t)arg->data_len, c->dev->desclen - MIN(c->readpos, c->dev->desclen));
	memcpy(arg->data, c->dev->desc + c->readpos, n);
	c->readpos += n;
	done(cl, (long)n, 0);
	return TRUE;
}

static void usb_node_setup(UMockdevIoctlBase *h, struct node *n)
{
	g_signal_connect(h, "handle-ioctl", G_CALLBACK(on_ioctl), n);
	g_signal_connect(h, "handle-read", G_CALLBACK(on_read), n);
	g_signal_connect(h, "client-connected", G_CALLBACK(on_connected), n);
	g_signal_connect(h, "client-vanished", G_CALLBACK(on_vanished), n);
}

/* ---- mirroring the server's list ---------------------------------------------------- */

static char *string_desc(int fd, uint32_t key, uint8_t idx)
{
	if (!idx)
		return g_strdup("");
	uint8_t setup[8] = {0x80, 6, idx, 3, 0x09, 0x04, 255, 0};
	uint8_t buf[255];
	int32_t n = control(fd, key, setup, buf, 1000);
	if (n < 2)
		return g_strdup("");
	GString *s = g_string_new(NULL);
	for (int i = 2; i + 1 < n && i < buf[0]; i += 2)
		g_string_append_unichar(s, get16(buf + i));
	return g_string_free(s, FALSE);
}

static void add_dev(int fd, const uint8_t *rec, const uint8_t *ports, uint8_t nports, const uint8_t *dd, const uint8_t *cfg, uint32_t cfglen)
{
	int slot = -1;
	for (int i = 0; i < MAX_DEVS; i++)
		if (!devs[i]) {
			slot = i;
			break;
		}
	if (slot < 0)
		return;
	struct simdev *d = g_new0(struct simdev, 1);
	d->key = get32(rec);
	d->bus = rec[4];
	d->addr = rec[5];
	d->speed = rec[6];
	int off = snprintf(d->sysname, sizeof d->sysname, "%u-", d->bus);
	for (int i = 0; i < nports; i++)
		off += snprintf(d->sysname + off, sizeof d->sysname - off, i ? ".%u" : "%u", ports[i]);
	if (!nports)
		snprintf(d->sysname + off, sizeof d->sysname - off, "%u", d->addr);
	snprintf(d->devnode, sizeof d->devnode, "/dev/bus/usb/%03u/%03u", d->bus, d->addr);
	d->desclen = 18 + cfglen;
	d->desc = g_malloc(d->desclen);
	memcpy(d->desc, dd, 18);
	memcpy(d->desc + 18, cfg, cfglen);

	char *manufacturer = NULL, *product = NULL, *serial = NULL;
	if (key_rpc(fd, OP_OPEN, d->key, NULL, 0) >= 0) {
		manufacturer = string_desc(fd, d->key, dd[14]);
		product = string_desc(fd, d->key, dd[15]);
		serial = string_desc(fd, d->key, dd[16]);
		key_rpc(fd, OP_CLOSE, d->key, NULL, 0);
	} else {
		manufacturer = g_strdup("");
		product = g_strdup("");
		serial = g_strdup("");
	}
	uint16_t vid = get16(dd + 8), pid = get16(dd + 10), bcd = get16(dd + 12);
	const char *speed = d->speed == 1 ? "1.5" : d->speed == 3 ? "480" : d->speed == 4 ? "5000" : "12";
	char busnum[8], devnum[8], busnum3[8], devnum3[8], vids[8], pids[8], bcds[8], devt[16], productp[32], ncfg[8], cls[8], maj[8], min[8];
	unsigned minor = (unsigned)(d->bus - 1) * 128 + (unsigned)(d->addr - 1);
	snprintf(busnum, sizeof busnum, "%u", d->bus);
	snprintf(devnum, sizeof devnum, "%u", d->addr);
	snprintf(busnum3, sizeof busnum3, "%03u", d->bus);
	snprintf(devnum3, sizeof devnum3, "%03u", d->addr);
	snprintf(vids, sizeof vids, "%04x", vid);
	snprintf(pids, sizeof pids, "%04x", pid);
	snprintf(bcds, sizeof bcds, "%04x", bcd);
	snprintf(devt, sizeof devt, "189:%u", minor);
	snprintf(productp, sizeof productp, "%x/%x/%x", vid, pid, bcd);
	snprintf(ncfg, sizeof ncfg, "%u", dd[17]);
	snprintf(cls, sizeof cls, "%02x", dd[4]);
	snprintf(maj, sizeof maj, "189");
	snprintf(min, sizeof min, "%u", minor);
	const gchar *attrs[] = {"busnum", busnum, "devnum", devnum, "idVendor", vids, "idProduct", pids, "bcdDevice", bcds,
				"speed", speed, "bConfigurationValue", "1", "bNumConfigurations", ncfg, "bDeviceClass", cls,
				"manufacturer", manufacturer, "product", product, "serial", serial, "dev", devt, NULL};
	const gchar *props[] = {"DEVNAME", d->devnode, "DEVTYPE", "usb_device", "DRIVER", "usb", "BUSNUM", busnum3, "DEVNUM", devnum3,
				"PRODUCT", productp, "TYPE", "0/0/0", "MAJOR", maj, "MINOR", min, "ID_VENDOR_ID", vids, "ID_MODEL_ID", pids,
				"ID_SERIAL_SHORT", serial, "ID_VENDOR", manufacturer, "ID_MODEL", product, NULL};
	d->refs = 1;
	/* The node first, so that a program finding the device can talk to it. */
	node_set(node_get(d->devnode, usb_node_setup), d);
	d->syspath = umockdev_testbed_add_devicev(tb, "usb", d->sysname, NULL, (gchar **)attrs, (gchar **)props);
	g_free(manufacturer);
	g_free(product);
	g_free(serial);
	if (!d->syspath) {
		node_set(node_get(d->devnode, usb_node_setup), NULL);
		simdev_unref(d);
		return;
	}
	umockdev_testbed_set_attribute_binary(tb, d->syspath, "descriptors", d->desc, (gint)d->desclen);
	char *node = g_build_filename(root_dir, d->devnode, NULL);
	char *dir = g_path_get_dirname(node);
	g_mkdir_with_parents(dir, 0755);
	g_file_set_contents(node, "", 0, NULL);
	g_free(dir);
	g_free(node);
	umockdev_testbed_uevent(tb, d->syspath, "add");
	devs[slot] = d;
}

static void remove_dev(int i)
{
	struct simdev *d = devs[i];
	devs[i] = NULL;
	struct node *n = node_get(d->devnode, usb_node_setup);
	g_mutex_lock(&node_lock);
	if (n->cur == d)
		n->cur = NULL;
	g_atomic_int_set(&d->gone, 1);
	g_mutex_unlock(&node_lock);
	umockdev_testbed_uevent(tb, d->syspath, "remove");
	umockdev_testbed_remove_device(tb, d->syspath);
	char *node = g_build_filename(root_dir, d->devnode, NULL);
	unlink(node);
	g_free(node);
	/* clients still holding the file keep their reference: the server answers them ENODEV */
	simdev_unref(d);
}

static int list_fd = -1;

/* sync lists the server's devices and mirrors the changes; FALSE when the server is gone. */
static gboolean sync_devices(void)
{
	if (list_fd < 0 && (list_fd = wire_connect(sock_path)) < 0)
		return FALSE;
	uint8_t *data;
	size_t len;
	if (rpc(list_fd, OP_LIST, NULL, 0, &data, &len) < 0 || len < 4) {
		g_free(data);
		return FALSE;
	}
	for (int i = 0; i < MAX_DEVS; i++)
		if (devs[i])
			devs[i]->seen = 0;
	/* Two passes: the devices that left go first, so that a device re-enumerating on the
	 * same port (same sysfs name) is removed before it is added again. */
	for (int pass = 0; pass < 2; pass++) {
		const uint8_t *p = data + 4, *end = data + len;
		uint32_t count = get32(data);
		for (uint32_t k = 0; k < count; k++) {
			if (end - p < 8)
				break;
			const uint8_t *rec = p;
			uint8_t nports = rec[7];
			const uint8_t *ports = rec + 8;
			p = ports + nports;
			if (end - p < 22)
				break;
			const uint8_t *dd = p;
			uint32_t cfglen = get32(p + 18);
			const uint8_t *cfg = p + 22;
			if ((size_t)(end - cfg) < cfglen)
				break;
			p = cfg + cfglen;
			uint32_t key = get32(rec);
			int found = 0;
			for (int i = 0; i < MAX_DEVS; i++)
				if (devs[i] && devs[i]->key == key)
					devs[i]->seen = found = 1;
			if (pass == 1 && !found)
				add_dev(list_fd, rec, ports, nports, dd, cfg, cfglen);
		}
		if (pass == 0)
			for (int i = 0; i < MAX_DEVS; i++)
				if (devs[i] && !devs[i]->seen)
					remove_dev(i);
	}
	g_free(data);
	return TRUE;
}

static GMainLoop *loop;

static gboolean tick(gpointer u)
{
	if (!sync_devices()) {
		g_printerr("usbsim-umockdev: the usbsim server at %s is gone\n", sock_path);
		g_main_loop_quit(loop);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

/* ---- the serial door ---------------------------------------------------------------- */

/* A tty's ioctls, reads and writes all go to the real pty behind its /dev node (UNHANDLED
 * makes the preload run the original call), so termios, line coding (14400 baud for DFU)
 * and data reach the virtual device's own serial port. */
static gboolean tty_passthrough(UMockdevIoctlBase *h, UMockdevIoctlClient *cl, gpointer user)
{
	umockdev_ioctl_client_complete(cl, -100, 0);
	return TRUE;
}

#define MAX_TTYS 64
static struct tty {
	char name[32];
	char devnode[48];
	char *syspath;
} *ttys[MAX_TTYS];

static void tty_node_setup(UMockdevIoctlBase *h, struct node *n)
{
	g_signal_connect(h, "handle-ioctl", G_CALLBACK(tty_passthrough), NULL);
	g_signal_connect(h, "handle-read", G_CALLBACK(tty_passthrough), NULL);
	g_signal_connect(h, "handle-write", G_CALLBACK(tty_passthrough), NULL);
}

static void tty_remove(const char *name)
{
	for (int i = 0; i < MAX_TTYS; i++) {
		struct tty *t = ttys[i];
		if (!t || strcmp(t->name, name) != 0)
			continue;
		ttys[i] = NULL;
		umockdev_testbed_uevent(tb, t->syspath, "remove");
		umockdev_testbed_remove_device(tb, t->syspath);
		char *node = g_build_filename(root_dir, t->devnode, NULL);
		unlink(node);
		g_free(node);
		g_free(t->syspath);
		g_free(t);
		return; /* names are unique (tty_add removes first), and name may be t's own */
	}
}

/* tty_add: a tty like the kernel's cdc_acm makes for a Particle device in a Device OS mode,
 * with the properties udev gives it, its node a link to the device's pty. */
static void tty_add(const char *name, const char *pty, const char *vid, const char *pid, const char *serial, unsigned minor)
{
	tty_remove(name);
	int slot = -1;
	for (int i = 0; i < MAX_TTYS; i++)
		if (!ttys[i]) {
			slot = i;
			break;
		}
	if (slot < 0)
		return;
	struct tty *t = g_new0(struct tty, 1);
	snprintf(t->name, sizeof t->name, "%s", name);
	snprintf(t->devnode, sizeof t->devnode, "/dev/%s", name);
	node_get(t->devnode, tty_node_setup);
	char devt[16], mins[8], model[64];
	snprintf(devt, sizeof devt, "166:%u", minor);
	snprintf(mins, sizeof mins, "%u", minor);
	snprintf(model, sizeof model, "Particle_%s", serial);
	const gchar *attrs[] = {"dev", devt, NULL};
	const gchar *props[] = {"DEVNAME", t->devnode, "MAJOR", "166", "MINOR", mins, "ID_BUS", "usb", "ID_VENDOR_ID", vid, "ID_MODEL_ID", pid,
				"ID_SERIAL_SHORT", serial, "ID_SERIAL", model, "ID_VENDOR", "Particle", "ID_USB_INTERFACE_NUM", "00",
				"ID_USB_DRIVER", "cdc_acm", "ID_PATH", "usb-sim", NULL};
	t->syspath = umockdev_testbed_add_devicev(tb, "tty", name, NULL, (gchar **)attrs, (gchar **)props);
	if (!t->syspath) {
		g_free(t);
		return;
	}
	char *node = g_build_filename(root_dir, t->devnode, NULL);
	unlink(node);
	if (symlink(pty, node) != 0)
		g_printerr("usbsim-umockdev: %s -> %s: %s\n", node, pty, g_strerror(errno));
	g_free(node);
	umockdev_testbed_uevent(tb, t->syspath, "add");
	ttys[slot] = t;
}

/* Commands on standard input, one a line:
 *   tty-add NAME PTY VID PID SERIAL MINOR
 *   tty-remove NAME
 *   sync            (answered "SYNCED" once the bus is mirrored and the commands before done)
 * End of input stops the bridge. */
static GString *inbuf;

static void command(char *line)
{
	gchar **f = g_strsplit(line, " ", 0);
	guint n = g_strv_length(f);
	if (n == 7 && strcmp(f[0], "tty-add") == 0)
		tty_add(f[1], f[2], f[3], f[4], f[5], (unsigned)atoi(f[6]));
	else if (n == 2 && strcmp(f[0], "tty-remove") == 0)
		tty_remove(f[1]);
	else if (n == 1 && strcmp(f[0], "sync") == 0) {
		sync_devices();
		printf("SYNCED\n");
		fflush(stdout);
	} else if (n > 0 && f[0][0])
		g_printerr("usbsim-umockdev: unknown command: %s\n", line);
	g_strfreev(f);
}

static gboolean stdin_ready(gint fd, GIOCondition c, gpointer u)
{
	char buf[1024];
	ssize_t r = read(fd, buf, sizeof buf);
	if (r <= 0) {
		g_main_loop_quit(loop);
		return G_SOURCE_REMOVE;
	}
	g_string_append_len(inbuf, buf, r);
	char *nl;
	while ((nl = memchr(inbuf->str, '\n', inbuf->len))) {
		*nl = 0;
		command(inbuf->str);
		g_string_erase(inbuf, 0, nl - inbuf->str + 1);
	}
	return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer u)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
		return 2;
	}
	sock_path = argv[1];
	tb = umockdev_testbed_new();
	root_dir = umockdev_testbed_get_root_dir(tb);
	nodes = g_hash_table_new(g_str_hash, g_str_equal);
	if (!sync_devices()) {
		fprintf(stderr, "usbsim-umockdev: cannot reach the usbsim server at %s\n", sock_path);
		return 1;
	}
	printf("UMOCKDEV_DIR=%s\nREADY\n", root_dir);
	fflush(stdout);
	loop = g_main_loop_new(NULL, FALSE);
	/* Ten milliseconds: a re-enumeration shows up as remove + add well within the tens of
	 * milliseconds a run polls at. */
	g_timeout_add(10, tick, NULL);
	inbuf = g_string_new(NULL);
	g_unix_fd_add(0, G_IO_IN | G_IO_HUP, stdin_ready, NULL);
	g_unix_signal_add(SIGTERM, on_signal, NULL);
	g_unix_signal_add(SIGINT, on_signal, NULL);
	g_main_loop_run(loop);
	for (int i = 0; i < MAX_DEVS; i++)
		if (devs[i])
			remove_dev(i);
	for (int i = 0; i < MAX_TTYS; i++)
		if (ttys[i])
			tty_remove(ttys[i]->name);
	GHashTableIter it;
	gpointer devnode;
	g_hash_table_iter_init(&it, nodes);
	while (g_hash_table_iter_next(&it, &devnode, NULL))
		umockdev_testbed_detach_ioctl(tb, devnode, NULL);
	g_object_unref(tb); /* removes the testbed directory */
	return 0;
}
