/*
 * libusb_shim.c - a fake libusb-1.0 for tests (package usbsim).
 *
 * What: a small shared library, built as libusb-1.0.so.0 and put first on
 * LD_LIBRARY_PATH, that exports every symbol of the real libusb-1.0.so.0
 * (1.0.26) so unmodified callers - the Debian dfu-util binary and Go programs
 * using github.com/google/gousb - load it instead of the real library.
 *
 * Why: no USB hardware exists where the tests run. Instead of talking to
 * usbfs, this library forwards enumeration and control transfers over a unix
 * socket to simulated devices served by the Go package usbsim in the test
 * process (see doc.go there for the wire protocol). The socket path comes from
 * the environment variable PFLASH_USBSIM_SOCKET; if it is unset or nobody
 * listens, libusb_init still succeeds and the device list is empty.
 *
 * Implemented for real: init/exit (also the default NULL context), device
 * lists with reference counting, device and configuration descriptors (the
 * configuration blob is parsed into libusb_config_descriptor with interfaces,
 * alt settings, endpoints and "extra" bytes, which is where dfu-util looks for
 * the DFU functional descriptor), bus/address/port path/speed, open/close,
 * claim/release, set alt setting, get/set configuration, reset, synchronous
 * control transfers, libusb_get_string_descriptor_ascii (langid first, like
 * real libusb), asynchronous *control* transfers (completed at submit time and
 * delivered by the event handler), and an event handler that really waits for
 * its timeout (gousb calls it in a loop forever). Everything else returns
 * LIBUSB_ERROR_NOT_SUPPORTED (or the nearest harmless value for void/pointer
 * functions). Bulk, interrupt and isochronous transfers are not simulated.
 *
 * One socket connection per context; a mutex serialises request/response
 * pairs because callers use a context from several threads at once.
 *
 * Build: cc -shared -fPIC -O2 -Wall -o libusb-1.0.so.0 libusb_shim.c -lpthread
 */
#define _GNU_SOURCE
#include <libusb-1.0/libusb.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "usbsim_wire.h" /* the operations, the frame limit, little-endian and socket I/O */

#define EXPORT __attribute__((visibility("default")))

#define MAX_PORTS 7
#define MAX_CONFIGS 8

struct libusb_context {
	pthread_mutex_t io; /* serialises one request/response on fd */
	int fd;             /* -1 while not connected */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	pthread_mutex_t ev; /* guards the fields below */
	pthread_cond_t cond;
	struct libusb_transfer *done_head, *done_tail; /* completed, not yet delivered */
	int interrupted;
	int refs; /* users of the default context */
};

struct libusb_device {
	struct libusb_context *ctx;
	int refs;
	uint32_t key;
	uint8_t bus, addr, speed, nports;
	uint8_t ports[MAX_PORTS];
	struct libusb_device_descriptor desc;
	int ncfg;
	size_t cfgoff[MAX_CONFIGS], cfglen[MAX_CONFIGS];
	size_t bloblen;
	uint8_t blob[]; /* all configuration descriptors, back to back */
};

struct libusb_device_handle {
	struct libusb_device *dev;
};

/* Private bookkeeping placed in front of every libusb_transfer we allocate. */
struct xfer_priv {
	struct libusb_transfer *next;
};
#define PRIV_SIZE ((sizeof(struct xfer_priv) + 15) & ~(size_t)15)
static struct xfer_priv *xpriv(struct libusb_transfer *t)
{
	return (struct xfer_priv *)((char *)t - PRIV_SIZE);
}

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static struct libusb_context *default_ctx;

static struct libusb_context *ctx_or_default(struct libusb_context *ctx)
{
	return ctx ? ctx : default_ctx;
}

/* Called with ctx->io held. */
static int ctx_connect(struct libusb_context *ctx)
{
	if (ctx->fd >= 0)
		return 0;
	ctx->fd = wire_connect(ctx->path);
	return ctx->fd < 0 ? -1 : 0;
}

/*
 * One request/response: sends "u32 len | u8 op | hdr | data" and returns the
 * response payload (after its op byte) in *resp (malloc'd, caller frees), which
 * always starts with an i32 status. Returns 0, or -1 if the server is
 * unreachable (then the connection is dropped and retried on the next call).
 */
static int rpc(struct libusb_context *ctx, uint8_t op, const uint8_t *hdr, size_t hdrlen,
	       const uint8_t *data, size_t datalen, uint8_t **resp, size_t *resplen)
{
	uint8_t head[5], *body = NULL;
	uint32_t n;

	*resp = NULL;
	*resplen = 0;
	if (!ctx)
		return -1;
	pthread_mutex_lock(&ctx->io);
	if (ctx_connect(ctx) < 0)
		goto fail;
	put32(head, (uint32_t)(1 + hdrlen + datalen));
	head[4] = op;
	if (wire_write(ctx->fd, head, 5) < 0 || wire_write(ctx->fd, hdr, hdrlen) < 0 ||
	    (datalen && wire_write(ctx->fd, data, datalen) < 0))
		goto drop;
	if (wire_read(ctx->fd, head, 4) < 0)
		goto drop;
	n = get32(head);
	if (n < 5 || n > MAX_FRAME)
		goto drop;
	body = malloc(n);
	if (!body || wire_read(ctx->fd, body, n) < 0 || body[0] != op)
		goto drop;
	pthread_mutex_unlock(&ctx->io);
	memmove(body, body + 1, n - 1);
	*resp = body;
	*resplen = n - 1;
	return 0;
drop:
	free(body);
	close(ctx->fd);
	ctx->fd = -1;
fail:
	pthread_mutex_unlock(&ctx->io);
	return -1;
}

/* A request about one device (key + small header); returns the i32 status. */
static int dev_rpc(struct libusb_device *dev, uint8_t op, const uint8_t *extra, size_t extralen)
{
	uint8_t hdr[16], *resp;
	size_t resplen;
	int status;

	put32(hdr, dev->key);
	if (extralen)
		memcpy(hdr + 4, extra, extralen);
	if (rpc(dev->ctx, op, hdr, 4 + extralen, NULL, 0, &resp, &resplen) < 0)
		return LIBUSB_ERROR_NO_DEVICE;
	status = resplen >= 4 ? (int)get32(resp) : LIBUSB_ERROR_IO;
	free(resp);
	return status;
}

/* ---- library and context ---- */

static struct libusb_context *ctx_new(void)
{
	struct libusb_context *ctx = calloc(1, sizeof(*ctx));
	const char *path = getenv("PFLASH_USBSIM_SOCKET");

	if (!ctx)
		return NULL;
	pthread_mutex_init(&ctx->io, NULL);
	pthread_mutex_init(&ctx->ev, NULL);
	pthread_cond_init(&ctx->cond, NULL);
	ctx->fd = -1;
	if (path && strlen(path) < sizeof(ctx->path))
		strcpy(ctx->path, path);
	return ctx;
}

static void ctx_free(struct libusb_context *ctx)
{
	if (ctx->fd >= 0)
		close(ctx->fd);
	pthread_mutex_destroy(&ctx->io);
	pthread_mutex_destroy(&ctx->ev);
	pthread_cond_destroy(&ctx->cond);
	free(ctx);
}

EXPORT int libusb_init(libusb_context **ctx)
{
	if (ctx) {
		*ctx = ctx_new();
		return *ctx ? LIBUSB_SUCCESS : LIBUSB_ERROR_NO_MEM;
	}
	pthread_mutex_lock(&default_lock);
	if (!default_ctx)
		default_ctx = ctx_new();
	if (default_ctx)
		default_ctx->refs++;
	pthread_mutex_unlock(&default_lock);
	return default_ctx ? LIBUSB_SUCCESS : LIBUSB_ERROR_NO_MEM;
}

EXPORT void libusb_exit(libusb_context *ctx)
{
	if (ctx) {
		ctx_free(ctx);
		return;
	}
	pthread_mutex_lock(&default_lock);
	if (default_ctx && --default_ctx->refs <= 0) {
		ctx_free(default_ctx);
		default_ctx = NULL;
	}
	pthread_mutex_unlock(&default_lock);
}

EXPORT void libusb_set_debug(libusb_context *ctx, int level) { (void)ctx; (void)level; }
EXPORT void libusb_set_log_cb(libusb_context *ctx, libusb_log_cb cb, int mode) { (void)ctx; (void)cb; (void)mode; }

EXPORT int libusb_set_option(libusb_context *ctx, enum libusb_option option, ...)
{
	(void)ctx;
	switch (option) {
	case LIBUSB_OPTION_LOG_LEVEL:
	case LIBUSB_OPTION_NO_DEVICE_DISCOVERY:
		return LIBUSB_SUCCESS;
	default:
		return LIBUSB_ERROR_NOT_SUPPORTED;
	}
}

EXPORT const struct libusb_version *libusb_get_version(void)
{
	static const struct libusb_version v = { 1, 0, 26, 11724, "", "usbsim libusb shim" };
	return &v;
}

EXPORT int libusb_has_capability(uint32_t capability)
{
	return capability == LIBUSB_CAP_HAS_CAPABILITY;
}

EXPORT const char *libusb_error_name(int code)
{
	switch (code) {
	case LIBUSB_ERROR_IO: return "LIBUSB_ERROR_IO";
	case LIBUSB_ERROR_INVALID_PARAM: return "LIBUSB_ERROR_INVALID_PARAM";
	case LIBUSB_ERROR_ACCESS: return "LIBUSB_ERROR_ACCESS";
	case LIBUSB_ERROR_NO_DEVICE: return "LIBUSB_ERROR_NO_DEVICE";
	case LIBUSB_ERROR_NOT_FOUND: return "LIBUSB_ERROR_NOT_FOUND";
	case LIBUSB_ERROR_BUSY: return "LIBUSB_ERROR_BUSY";
	case LIBUSB_ERROR_TIMEOUT: return "LIBUSB_ERROR_TIMEOUT";
	case LIBUSB_ERROR_OVERFLOW: return "LIBUSB_ERROR_OVERFLOW";
	case LIBUSB_ERROR_PIPE: return "LIBUSB_ERROR_PIPE";
	case LIBUSB_ERROR_INTERRUPTED: return "LIBUSB_ERROR_INTERRUPTED";
	case LIBUSB_ERROR_NO_MEM: return "LIBUSB_ERROR_NO_MEM";
	case LIBUSB_ERROR_NOT_SUPPORTED: return "LIBUSB_ERROR_NOT_SUPPORTED";
	case LIBUSB_ERROR_OTHER: return "LIBUSB_ERROR_OTHER";
	case LIBUSB_TRANSFER_ERROR: return "LIBUSB_TRANSFER_ERROR";
	case LIBUSB_TRANSFER_TIMED_OUT: return "LIBUSB_TRANSFER_TIMED_OUT";
	case LIBUSB_TRANSFER_CANCELLED: return "LIBUSB_TRANSFER_CANCELLED";
	case LIBUSB_TRANSFER_STALL: return "LIBUSB_TRANSFER_STALL";
	case LIBUSB_TRANSFER_NO_DEVICE: return "LIBUSB_TRANSFER_NO_DEVICE";
	case LIBUSB_TRANSFER_OVERFLOW: return "LIBUSB_TRANSFER_OVERFLOW";
	case 0: return "LIBUSB_SUCCESS / LIBUSB_TRANSFER_COMPLETED";
	default: return "**UNKNOWN**";
	}
}

EXPORT int libusb_setlocale(const char *locale) { (void)locale; return LIBUSB_SUCCESS; }

EXPORT const char *libusb_strerror(int code)
{
	switch (code) {
	case LIBUSB_SUCCESS: return "Success";
	case LIBUSB_ERROR_IO: return "Input/Output Error";
	case LIBUSB_ERROR_INVALID_PARAM: return "Invalid parameter";
	case LIBUSB_ERROR_ACCESS: return "Access denied (insufficient permissions)";
	case LIBUSB_ERROR_NO_DEVICE: return "No such device (it may have been disconnected)";
	case LIBUSB_ERROR_NOT_FOUND: return "Entity not found";
	case LIBUSB_ERROR_BUSY: return "Resource busy";
	case LIBUSB_ERROR_TIMEOUT: return "Operation timed out";
	case LIBUSB_ERROR_OVERFLOW: return "Overflow";
	case LIBUSB_ERROR_PIPE: return "Pipe error";
	case LIBUSB_ERROR_INTERRUPTED: return "System call interrupted (perhaps due to signal)";
	case LIBUSB_ERROR_NO_MEM: return "Insufficient memory";
	case LIBUSB_ERROR_NOT_SUPPORTED: return "Operation not supported or unimplemented on this platform";
	default: return "Other error";
	}
}

/* ---- enumeration ---- */

static void parse_device_descriptor(const uint8_t *p, struct libusb_device_descriptor *d)
{
	d->bLength = p[0];
	d->bDescriptorType = p[1];
	d->bcdUSB = get16(p + 2);
	d->bDeviceClass = p[4];
	d->bDeviceSubClass = p[5];
	d->bDeviceProtocol = p[6];
	d->bMaxPacketSize0 = p[7];
	d->idVendor = get16(p + 8);
	d->idProduct = get16(p + 10);
	d->bcdDevice = get16(p + 12);
	d->iManufacturer = p[14];
	d->iProduct = p[15];
	d->iSerialNumber = p[16];
	d->bNumConfigurations = p[17];
}

/*
 * Builds one libusb_device from a LIST record at *p (advancing it), or
 * returns NULL if the record is malformed.
 * Record: u32 key, u8 bus, u8 addr, u8 speed, u8 nports, ports[nports],
 * 18-byte device descriptor, u32 config blob length, config blob.
 */
static struct libusb_device *parse_device(struct libusb_context *ctx, const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;
	struct libusb_device *dev;
	uint32_t bloblen;
	uint8_t nports;
	size_t off;

	if (end - p < 8)
		return NULL;
	nports = p[7];
	if (nports > MAX_PORTS || (size_t)(end - p) < 8u + nports + 18 + 4)
		return NULL;
	bloblen = get32(p + 8 + nports + 18);
	if ((size_t)(end - p) - (8u + nports + 18 + 4) < bloblen)
		return NULL;
	dev = calloc(1, sizeof(*dev) + bloblen);
	if (!dev)
		return NULL;
	dev->ctx = ctx;
	dev->refs = 1;
	dev->key = get32(p);
	dev->bus = p[4];
	dev->addr = p[5];
	dev->speed = p[6];
	dev->nports = nports;
	memcpy(dev->ports, p + 8, nports);
	parse_device_descriptor(p + 8 + nports, &dev->desc);
	dev->bloblen = bloblen;
	memcpy(dev->blob, p + 8 + nports + 18 + 4, bloblen);
	/* split the blob into configuration descriptors by wTotalLength */
	for (off = 0; off + 4 <= bloblen && dev->ncfg < MAX_CONFIGS;) {
		size_t total = get16(dev->blob + off + 2);
		if (dev->blob[off + 1] != LIBUSB_DT_CONFIG || total < LIBUSB_DT_CONFIG_SIZE || off + total > bloblen)
			break;
		dev->cfgoff[dev->ncfg] = off;
		dev->cfglen[dev->ncfg] = total;
		dev->ncfg++;
		off += total;
	}
	*pp = p + 8 + nports + 18 + 4 + bloblen;
	return dev;
}

EXPORT libusb_device *libusb_ref_device(libusb_device *dev)
{
	__atomic_add_fetch(&dev->refs, 1, __ATOMIC_SEQ_CST);
	return dev;
}

EXPORT void libusb_unref_device(libusb_device *dev)
{
	if (dev && __atomic_sub_fetch(&dev->refs, 1, __ATOMIC_SEQ_CST) == 0)
		free(dev);
}

EXPORT ssize_t libusb_get_device_list(libusb_context *ctx, libusb_device ***list)
{
	uint8_t *resp;
	const uint8_t *p, *end;
	size_t resplen, i, count = 0;
	libusb_device **out;

	ctx = ctx_or_default(ctx);
	if (!ctx || !list)
		return LIBUSB_ERROR_INVALID_PARAM;
	if (rpc(ctx, OP_LIST, NULL, 0, NULL, 0, &resp, &resplen) == 0) {
		if (resplen >= 8 && (int32_t)get32(resp) == 0)
			count = get32(resp + 4);
		if (count > 4096)
			count = 0;
	}
	out = calloc(count + 1, sizeof(*out));
	if (!out) {
		free(resp);
		return LIBUSB_ERROR_NO_MEM;
	}
	p = count ? resp + 8 : NULL;
	end = count ? resp + resplen : NULL;
	for (i = 0; i < count; i++) {
		out[i] = parse_device(ctx, &p, end);
		if (!out[i]) {
			while (i > 0)
				libusb_unref_device(out[--i]);
			free(out);
			free(resp);
			return LIBUSB_ERROR_IO;
		}
	}
	free(resp);
	*list = out;
	return (ssize_t)count;
}

EXPORT void libusb_free_device_list(libusb_device **list, int unref_devices)
{
	libusb_device **d;

	if (!list)
		return;
	if (unref_devices)
		for (d = list; *d; d++)
			libusb_unref_device(*d);
	free(list);
}

EXPORT uint8_t libusb_get_bus_number(libusb_device *dev) { return dev->bus; }
EXPORT uint8_t libusb_get_device_address(libusb_device *dev) { return dev->addr; }
EXPORT int libusb_get_device_speed(libusb_device *dev) { return dev->speed; }
EXPORT uint8_t libusb_get_port_number(libusb_device *dev) { return dev->nports ? dev->ports[dev->nports - 1] : 0; }
EXPORT libusb_device *libusb_get_parent(libusb_device *dev) { (void)dev; return NULL; }

EXPORT int libusb_get_port_numbers(libusb_device *dev, uint8_t *port_numbers, int len)
{
	if (len <= 0)
		return LIBUSB_ERROR_INVALID_PARAM;
	if (dev->nports > len)
		return LIBUSB_ERROR_OVERFLOW;
	memcpy(port_numbers, dev->ports, dev->nports);
	return dev->nports;
}

EXPORT int libusb_get_port_path(libusb_context *ctx, libusb_device *dev, uint8_t *path, uint8_t path_length)
{
	(void)ctx;
	return libusb_get_port_numbers(dev, path, path_length);
}

EXPORT int libusb_get_device_descriptor(libusb_device *dev, struct libusb_device_descriptor *desc)
{
	*desc = dev->desc;
	return LIBUSB_SUCCESS;
}

/* ---- configuration descriptor parsing ---- */

static int is_boundary(uint8_t type)
{
	return type == LIBUSB_DT_INTERFACE || type == LIBUSB_DT_ENDPOINT ||
	       type == LIBUSB_DT_CONFIG || type == LIBUSB_DT_DEVICE;
}

/* Length of the run of "extra" descriptors starting at off (up to the next boundary). */
static size_t extra_run(const uint8_t *b, size_t off, size_t len)
{
	size_t start = off;

	while (off + 2 <= len && b[off] >= 2 && off + b[off] <= len && !is_boundary(b[off + 1]))
		off += b[off];
	return off - start;
}

/*
 * Parses one configuration descriptor (raw bytes b[0:len]) into a single
 * malloc'd block: the config struct, then the interface, alt setting and
 * endpoint arrays, then a copy of the raw bytes that the "extra" pointers
 * point into. libusb_free_config_descriptor is then a plain free().
 */
static int parse_config(const uint8_t *raw, size_t len, struct libusb_config_descriptor **out)
{
	size_t off, nif = 0, nalt = 0, nep = 0, size, x;
	int last_if = -1;
	struct libusb_config_descriptor *c;
	struct libusb_interface *ifs;
	struct libusb_interface_descriptor *alts, *alt = NULL;
	struct libusb_endpoint_descriptor *eps;
	uint8_t *b;

	if (len < LIBUSB_DT_CONFIG_SIZE || raw[1] != LIBUSB_DT_CONFIG)
		return LIBUSB_ERROR_IO;
	/* pass 1: count */
	for (off = raw[0]; off + 2 <= len && raw[off] >= 2 && off + raw[off] <= len; off += raw[off]) {
		if (raw[off + 1] == LIBUSB_DT_INTERFACE && raw[off] >= LIBUSB_DT_INTERFACE_SIZE) {
			if (raw[off + 2] != last_if)
				nif++;
			last_if = raw[off + 2];
			nalt++;
		} else if (raw[off + 1] == LIBUSB_DT_ENDPOINT && raw[off] >= LIBUSB_DT_ENDPOINT_SIZE && nalt) {
			nep++;
		}
	}
	size = sizeof(*c) + nif * sizeof(*ifs) + nalt * sizeof(*alts) + nep * sizeof(*eps) + len;
	c = calloc(1, size);
	if (!c)
		return LIBUSB_ERROR_NO_MEM;
	ifs = (struct libusb_interface *)(c + 1);
	alts = (struct libusb_interface_descriptor *)(ifs + nif);
	eps = (struct libusb_endpoint_descriptor *)(alts + nalt);
	b = (uint8_t *)(eps + nep);
	memcpy(b, raw, len);

	c->bLength = b[0];
	c->bDescriptorType = b[1];
	c->wTotalLength = get16(b + 2);
	c->bConfigurationValue = b[5];
	c->iConfiguration = b[6];
	c->bmAttributes = b[7];
	c->MaxPower = b[8];
	c->interface = ifs;
	off = b[0];
	x = extra_run(b, off, len);
	c->extra = x ? b + off : NULL;
	c->extra_length = (int)x;
	off += x;

	/* pass 2: fill */
	nif = nalt = nep = 0;
	last_if = -1;
	while (off + 2 <= len && b[off] >= 2 && off + b[off] <= len) {
		uint8_t dl = b[off], type = b[off + 1];
		if (type == LIBUSB_DT_INTERFACE && dl >= LIBUSB_DT_INTERFACE_SIZE) {
			if (b[off + 2] != last_if) {
				ifs[nif].altsetting = &alts[nalt];
				nif++;
			}
			last_if = b[off + 2];
			ifs[nif - 1].num_altsetting++;
			alt = &alts[nalt++];
			alt->bLength = dl;
			alt->bDescriptorType = type;
			alt->bInterfaceNumber = b[off + 2];
			alt->bAlternateSetting = b[off + 3];
			alt->bNumEndpoints = 0; /* counted below from what is really there */
			alt->bInterfaceClass = b[off + 5];
			alt->bInterfaceSubClass = b[off + 6];
			alt->bInterfaceProtocol = b[off + 7];
			alt->iInterface = b[off + 8];
			alt->endpoint = &eps[nep];
			off += dl;
			x = extra_run(b, off, len);
			alt->extra = x ? b + off : NULL;
			alt->extra_length = (int)x;
			off += x;
		} else if (type == LIBUSB_DT_ENDPOINT && dl >= LIBUSB_DT_ENDPOINT_SIZE && alt) {
			struct libusb_endpoint_descriptor *ep = &eps[nep++];
			alt->bNumEndpoints++;
			ep->bLength = dl;
			ep->bDescriptorType = type;
			ep->bEndpointAddress = b[off + 2];
			ep->bmAttributes = b[off + 3];
			ep->wMaxPacketSize = get16(b + off + 4);
			ep->bInterval = b[off + 6];
			if (dl >= LIBUSB_DT_ENDPOINT_AUDIO_SIZE) {
				ep->bRefresh = b[off + 7];
				ep->bSynchAddress = b[off + 8];
			}
			off += dl;
			x = extra_run(b, off, len);
			ep->extra = x ? b + off : NULL;
			ep->extra_length = (int)x;
			off += x;
		} else {
			off += dl; /* stray descriptor before the first interface, or malformed */
		}
	}
	c->bNumInterfaces = (uint8_t)nif;
	*out = c;
	return LIBUSB_SUCCESS;
}

EXPORT int libusb_get_config_descriptor(libusb_device *dev, uint8_t config_index, struct libusb_config_descriptor **config)
{
	if (config_index >= dev->ncfg)
		return LIBUSB_ERROR_NOT_FOUND;
	return parse_config(dev->blob + dev->cfgoff[config_index], dev->cfglen[config_index], config);
}

EXPORT int libusb_get_active_config_descriptor(libusb_device *dev, struct libusb_config_descriptor **config)
{
	return libusb_get_config_descriptor(dev, 0, config);
}

EXPORT int libusb_get_config_descriptor_by_value(libusb_device *dev, uint8_t value, struct libusb_config_descriptor **config)
{
	int i;

	for (i = 0; i < dev->ncfg; i++)
		if (dev->blob[dev->cfgoff[i] + 5] == value)
			return libusb_get_config_descriptor(dev, (uint8_t)i, config);
	return LIBUSB_ERROR_NOT_FOUND;
}

EXPORT void libusb_free_config_descriptor(struct libusb_config_descriptor *config)
{
	free(config);
}

EXPORT int libusb_get_max_packet_size(libusb_device *dev, unsigned char endpoint)
{
	struct libusb_config_descriptor *c;
	int i, j, k, r = LIBUSB_ERROR_NOT_FOUND;

	if (libusb_get_config_descriptor(dev, 0, &c) < 0)
		return LIBUSB_ERROR_OTHER;
	for (i = 0; i < c->bNumInterfaces; i++)
		for (j = 0; j < c->interface[i].num_altsetting; j++)
			for (k = 0; k < c->interface[i].altsetting[j].bNumEndpoints; k++)
				if (r < 0 && c->interface[i].altsetting[j].endpoint[k].bEndpointAddress == endpoint)
					r = c->interface[i].altsetting[j].endpoint[k].wMaxPacketSize;
	free(c);
	return r;
}

EXPORT int libusb_get_max_iso_packet_size(libusb_device *dev, unsigned char endpoint)
{
	int r = libusb_get_max_packet_size(dev, endpoint);

	return r < 0 ? r : (r & 0x7ff) * (1 + ((r >> 11) & 3));
}

/* ---- device handles ---- */

EXPORT int libusb_open(libusb_device *dev, libusb_device_handle **dev_handle)
{
	struct libusb_device_handle *h;
	int r = dev_rpc(dev, OP_OPEN, NULL, 0);

	if (r < 0)
		return r;
	h = calloc(1, sizeof(*h));
	if (!h) {
		dev_rpc(dev, OP_CLOSE, NULL, 0);
		return LIBUSB_ERROR_NO_MEM;
	}
	h->dev = libusb_ref_device(dev);
	*dev_handle = h;
	return LIBUSB_SUCCESS;
}

EXPORT void libusb_close(libusb_device_handle *h)
{
	if (!h)
		return;
	dev_rpc(h->dev, OP_CLOSE, NULL, 0);
	libusb_unref_device(h->dev);
	free(h);
}

EXPORT libusb_device *libusb_get_device(libusb_device_handle *h) { return h->dev; }

EXPORT libusb_device_handle *libusb_open_device_with_vid_pid(libusb_context *ctx, uint16_t vid, uint16_t pid)
{
	libusb_device **list;
	libusb_device_handle *h = NULL;
	ssize_t n, i;

	n = libusb_get_device_list(ctx, &list);
	if (n < 0)
		return NULL;
	for (i = 0; i < n && !h; i++)
		if (list[i]->desc.idVendor == vid && list[i]->desc.idProduct == pid && libusb_open(list[i], &h) < 0)
			h = NULL;
	libusb_free_device_list(list, 1);
	return h;
}

static int iface_rpc(libusb_device_handle *h, uint8_t op, int a, int b)
{
	uint8_t x[2] = { (uint8_t)a, (uint8_t)b };

	if (a < 0 || a > 255 || b < 0 || b > 255)
		return LIBUSB_ERROR_INVALID_PARAM;
	return dev_rpc(h->dev, op, x, 2);
}

EXPORT int libusb_claim_interface(libusb_device_handle *h, int iface) { return iface_rpc(h, OP_CLAIM, iface, 0); }
EXPORT int libusb_release_interface(libusb_device_handle *h, int iface) { return iface_rpc(h, OP_RELEASE, iface, 0); }
EXPORT int libusb_set_interface_alt_setting(libusb_device_handle *h, int iface, int alt) { return iface_rpc(h, OP_SET_ALT, iface, alt); }
EXPORT int libusb_reset_device(libusb_device_handle *h) { return dev_rpc(h->dev, OP_RESET, NULL, 0); }

EXPORT int libusb_set_configuration(libusb_device_handle *h, int configuration)
{
	uint8_t x[4];

	put32(x, (uint32_t)configuration);
	return dev_rpc(h->dev, OP_SET_CONFIG, x, 4);
}

EXPORT int libusb_get_configuration(libusb_device_handle *h, int *config)
{
	int r = dev_rpc(h->dev, OP_GET_CONFIG, NULL, 0);

	if (r < 0)
		return r;
	*config = r;
	return LIBUSB_SUCCESS;
}

/* Nothing is bound to simulated devices, so there is never a kernel driver. */
EXPORT int libusb_kernel_driver_active(libusb_device_handle *h, int iface) { (void)h; (void)iface; return 0; }
EXPORT int libusb_detach_kernel_driver(libusb_device_handle *h, int iface) { (void)h; (void)iface; return LIBUSB_ERROR_NOT_FOUND; }
EXPORT int libusb_attach_kernel_driver(libusb_device_handle *h, int iface) { (void)h; (void)iface; return LIBUSB_ERROR_NOT_FOUND; }
EXPORT int libusb_set_auto_detach_kernel_driver(libusb_device_handle *h, int enable) { (void)h; (void)enable; return LIBUSB_SUCCESS; }

/* ---- synchronous transfers ---- */

EXPORT int libusb_control_transfer(libusb_device_handle *h, uint8_t request_type, uint8_t bRequest,
				   uint16_t wValue, uint16_t wIndex, unsigned char *data, uint16_t wLength,
				   unsigned int timeout)
{
	uint8_t hdr[16], *resp;
	size_t resplen;
	int in = (request_type & LIBUSB_ENDPOINT_IN) != 0, r;

	if (!h)
		return LIBUSB_ERROR_INVALID_PARAM;
	put32(hdr, h->dev->key);
	hdr[4] = request_type;
	hdr[5] = bRequest;
	put16(hdr + 6, wValue);
	put16(hdr + 8, wIndex);
	put16(hdr + 10, wLength);
	put32(hdr + 12, timeout);
	if (rpc(h->dev->ctx, OP_CONTROL, hdr, 16, in ? NULL : data, in ? 0 : wLength, &resp, &resplen) < 0)
		return LIBUSB_ERROR_NO_DEVICE;
	r = resplen >= 4 ? (int32_t)get32(resp) : LIBUSB_ERROR_IO;
	if (r > (int)wLength)
		r = LIBUSB_ERROR_OVERFLOW;
	if (r > 0 && in) {
		if (resplen - 4 < (size_t)r)
			r = (int)(resplen - 4);
		memcpy(data, resp + 4, (size_t)r);
	}
	free(resp);
	return r;
}

EXPORT int libusb_bulk_transfer(libusb_device_handle *h, unsigned char endpoint, unsigned char *data, int length,
				int *actual_length, unsigned int timeout)
{
	(void)h; (void)endpoint; (void)data; (void)length; (void)timeout;
	if (actual_length)
		*actual_length = 0;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}

EXPORT int libusb_interrupt_transfer(libusb_device_handle *h, unsigned char endpoint, unsigned char *data, int length,
				     int *actual_length, unsigned int timeout)
{
	return libusb_bulk_transfer(h, endpoint, data, length, actual_length, timeout);
}

EXPORT int libusb_get_string_descriptor_ascii(libusb_device_handle *h, uint8_t desc_index, unsigned char *data, int length)
{
	unsigned char tbuf[255];
	int r, di, si;
	uint16_t langid;

	if (desc_index == 0 || length <= 0)
		return LIBUSB_ERROR_INVALID_PARAM;
	r = libusb_control_transfer(h, LIBUSB_ENDPOINT_IN, LIBUSB_REQUEST_GET_DESCRIPTOR, LIBUSB_DT_STRING << 8, 0,
				    tbuf, sizeof(tbuf), 1000);
	if (r < 0)
		return r;
	if (r < 4)
		return LIBUSB_ERROR_IO;
	langid = get16(tbuf + 2);
	r = libusb_control_transfer(h, LIBUSB_ENDPOINT_IN, LIBUSB_REQUEST_GET_DESCRIPTOR,
				    (uint16_t)(LIBUSB_DT_STRING << 8 | desc_index), langid, tbuf, sizeof(tbuf), 1000);
	if (r < 0)
		return r;
	if (r < 2 || tbuf[1] != LIBUSB_DT_STRING || tbuf[0] > r)
		return LIBUSB_ERROR_IO;
	for (di = 0, si = 2; si + 1 < tbuf[0] && di < length - 1; si += 2)
		data[di++] = (tbuf[si] & 0x80) || tbuf[si + 1] ? '?' : tbuf[si];
	data[di] = 0;
	return di;
}

/* ---- asynchronous transfers (control only) and event handling ---- */

EXPORT struct libusb_transfer *libusb_alloc_transfer(int iso_packets)
{
	size_t size;
	char *m;

	if (iso_packets < 0)
		return NULL;
	size = PRIV_SIZE + sizeof(struct libusb_transfer) + (size_t)iso_packets * sizeof(struct libusb_iso_packet_descriptor);
	m = calloc(1, size);
	if (!m)
		return NULL;
	((struct libusb_transfer *)(m + PRIV_SIZE))->num_iso_packets = iso_packets;
	return (struct libusb_transfer *)(m + PRIV_SIZE);
}

EXPORT void libusb_free_transfer(struct libusb_transfer *t)
{
	if (!t)
		return;
	if ((t->flags & LIBUSB_TRANSFER_FREE_BUFFER) && t->buffer)
		free(t->buffer);
	free(xpriv(t));
}

/* Control transfers run to completion right here; the callback is delivered
 * later by the event handler, as with real libusb. */
EXPORT int libusb_submit_transfer(struct libusb_transfer *t)
{
	struct libusb_context *ctx;
	int r;

	if (!t || !t->dev_handle)
		return LIBUSB_ERROR_INVALID_PARAM;
	if (t->type != LIBUSB_TRANSFER_TYPE_CONTROL)
		return LIBUSB_ERROR_NOT_SUPPORTED;
	if (t->length < (int)LIBUSB_CONTROL_SETUP_SIZE)
		return LIBUSB_ERROR_INVALID_PARAM;
	ctx = t->dev_handle->dev->ctx;
	r = libusb_control_transfer(t->dev_handle, t->buffer[0], t->buffer[1], get16(t->buffer + 2),
				    get16(t->buffer + 4), t->buffer + LIBUSB_CONTROL_SETUP_SIZE,
				    get16(t->buffer + 6), t->timeout);
	t->actual_length = r > 0 ? r : 0;
	switch (r) {
	case LIBUSB_ERROR_NO_DEVICE:
		return r; /* like real libusb: fails at submit time */
	case LIBUSB_ERROR_PIPE: t->status = LIBUSB_TRANSFER_STALL; break;
	case LIBUSB_ERROR_TIMEOUT: t->status = LIBUSB_TRANSFER_TIMED_OUT; break;
	case LIBUSB_ERROR_OVERFLOW: t->status = LIBUSB_TRANSFER_OVERFLOW; break;
	default: t->status = r < 0 ? LIBUSB_TRANSFER_ERROR : LIBUSB_TRANSFER_COMPLETED;
	}
	xpriv(t)->next = NULL;
	pthread_mutex_lock(&ctx->ev);
	if (ctx->done_tail)
		xpriv(ctx->done_tail)->next = t;
	else
		ctx->done_head = t;
	ctx->done_tail = t;
	pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->ev);
	return LIBUSB_SUCCESS;
}

/* Submitted transfers complete immediately, so there is never one to cancel. */
EXPORT int libusb_cancel_transfer(struct libusb_transfer *t) { (void)t; return LIBUSB_ERROR_NOT_FOUND; }
EXPORT void libusb_transfer_set_stream_id(struct libusb_transfer *t, uint32_t stream_id) { (void)t; (void)stream_id; }
EXPORT uint32_t libusb_transfer_get_stream_id(struct libusb_transfer *t) { (void)t; return 0; }

/*
 * Waits until a completion is queued, *completed becomes non-zero, the
 * handler is interrupted, or tv elapses; then delivers queued callbacks.
 * It really sleeps: gousb calls this in a tight loop for its whole life.
 */
EXPORT int libusb_handle_events_timeout_completed(libusb_context *ctx, struct timeval *tv, int *completed)
{
	struct timespec deadline;
	struct libusb_transfer *t, *next;

	ctx = ctx_or_default(ctx);
	if (!ctx)
		return LIBUSB_ERROR_INVALID_PARAM;
	clock_gettime(CLOCK_REALTIME, &deadline);
	if (tv) {
		deadline.tv_sec += tv->tv_sec + (tv->tv_usec / 1000000);
		deadline.tv_nsec += (tv->tv_usec % 1000000) * 1000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	} else {
		deadline.tv_sec += 60;
	}
	pthread_mutex_lock(&ctx->ev);
	while (!ctx->done_head && !ctx->interrupted && !(completed && *completed))
		if (pthread_cond_timedwait(&ctx->cond, &ctx->ev, &deadline) == ETIMEDOUT)
			break;
	t = ctx->done_head;
	ctx->done_head = ctx->done_tail = NULL;
	ctx->interrupted = 0;
	pthread_mutex_unlock(&ctx->ev);
	for (; t; t = next) {
		next = xpriv(t)->next;
		if (t->callback)
			t->callback(t); /* may free t */
	}
	/* let other waiters re-check their *completed flag */
	pthread_mutex_lock(&ctx->ev);
	pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->ev);
	return LIBUSB_SUCCESS;
}

EXPORT int libusb_handle_events_timeout(libusb_context *ctx, struct timeval *tv) { return libusb_handle_events_timeout_completed(ctx, tv, NULL); }
EXPORT int libusb_handle_events(libusb_context *ctx) { return libusb_handle_events_timeout_completed(ctx, NULL, NULL); }
EXPORT int libusb_handle_events_completed(libusb_context *ctx, int *completed) { return libusb_handle_events_timeout_completed(ctx, NULL, completed); }
EXPORT int libusb_handle_events_locked(libusb_context *ctx, struct timeval *tv) { return libusb_handle_events_timeout_completed(ctx, tv, NULL); }

EXPORT void libusb_interrupt_event_handler(libusb_context *ctx)
{
	ctx = ctx_or_default(ctx);
	if (!ctx)
		return;
	pthread_mutex_lock(&ctx->ev);
	ctx->interrupted = 1;
	pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->ev);
}

EXPORT int libusb_wait_for_event(libusb_context *ctx, struct timeval *tv)
{
	struct timespec d;

	(void)ctx;
	if (!tv)
		return 0;
	d.tv_sec = tv->tv_sec;
	d.tv_nsec = tv->tv_usec * 1000;
	nanosleep(&d, NULL);
	return 1; /* timed out */
}

/* Event locks: the shim's handler is thread-safe on its own, so these are no-ops. */
EXPORT int libusb_try_lock_events(libusb_context *ctx) { (void)ctx; return 0; }
EXPORT void libusb_lock_events(libusb_context *ctx) { (void)ctx; }
EXPORT void libusb_unlock_events(libusb_context *ctx) { (void)ctx; }
EXPORT int libusb_event_handling_ok(libusb_context *ctx) { (void)ctx; return 1; }
EXPORT int libusb_event_handler_active(libusb_context *ctx) { (void)ctx; return 0; }
EXPORT void libusb_lock_event_waiters(libusb_context *ctx) { (void)ctx; }
EXPORT void libusb_unlock_event_waiters(libusb_context *ctx) { (void)ctx; }
EXPORT int libusb_pollfds_handle_timeouts(libusb_context *ctx) { (void)ctx; return 1; }

EXPORT int libusb_get_next_timeout(libusb_context *ctx, struct timeval *tv)
{
	(void)ctx;
	if (tv)
		tv->tv_sec = tv->tv_usec = 0;
	return 0; /* no pending timeouts */
}

EXPORT const struct libusb_pollfd **libusb_get_pollfds(libusb_context *ctx)
{
	(void)ctx;
	return calloc(1, sizeof(struct libusb_pollfd *)); /* empty, NULL-terminated */
}

EXPORT void libusb_free_pollfds(const struct libusb_pollfd **pollfds) { free((void *)pollfds); }

EXPORT void libusb_set_pollfd_notifiers(libusb_context *ctx, libusb_pollfd_added_cb added_cb,
					libusb_pollfd_removed_cb removed_cb, void *user_data)
{
	(void)ctx; (void)added_cb; (void)removed_cb; (void)user_data;
}

/* ---- not supported ---- */

EXPORT int libusb_hotplug_register_callback(libusb_context *ctx, int events, int flags, int vendor_id, int product_id,
					    int dev_class, libusb_hotplug_callback_fn cb_fn, void *user_data,
					    libusb_hotplug_callback_handle *callback_handle)
{
	(void)ctx; (void)events; (void)flags; (void)vendor_id; (void)product_id; (void)dev_class;
	(void)cb_fn; (void)user_data; (void)callback_handle;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT void libusb_hotplug_deregister_callback(libusb_context *ctx, libusb_hotplug_callback_handle h) { (void)ctx; (void)h; }
EXPORT void *libusb_hotplug_get_user_data(libusb_context *ctx, libusb_hotplug_callback_handle h) { (void)ctx; (void)h; return NULL; }

EXPORT int libusb_wrap_sys_device(libusb_context *ctx, intptr_t sys_dev, libusb_device_handle **dev_handle)
{
	(void)ctx; (void)sys_dev; (void)dev_handle;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT int libusb_clear_halt(libusb_device_handle *h, unsigned char endpoint) { (void)h; (void)endpoint; return LIBUSB_ERROR_NOT_SUPPORTED; }
EXPORT int libusb_alloc_streams(libusb_device_handle *h, uint32_t num_streams, unsigned char *endpoints, int num_endpoints)
{
	(void)h; (void)num_streams; (void)endpoints; (void)num_endpoints;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT int libusb_free_streams(libusb_device_handle *h, unsigned char *endpoints, int num_endpoints)
{
	(void)h; (void)endpoints; (void)num_endpoints;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT unsigned char *libusb_dev_mem_alloc(libusb_device_handle *h, size_t length) { (void)h; (void)length; return NULL; }
EXPORT int libusb_dev_mem_free(libusb_device_handle *h, unsigned char *buffer, size_t length)
{
	(void)h; (void)buffer; (void)length;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}

EXPORT int libusb_get_ss_endpoint_companion_descriptor(libusb_context *ctx, const struct libusb_endpoint_descriptor *endpoint,
						       struct libusb_ss_endpoint_companion_descriptor **ep_comp)
{
	(void)ctx; (void)endpoint; (void)ep_comp;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT void libusb_free_ss_endpoint_companion_descriptor(struct libusb_ss_endpoint_companion_descriptor *ep_comp) { free(ep_comp); }
EXPORT int libusb_get_bos_descriptor(libusb_device_handle *h, struct libusb_bos_descriptor **bos)
{
	(void)h; (void)bos;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT void libusb_free_bos_descriptor(struct libusb_bos_descriptor *bos) { free(bos); }
EXPORT int libusb_get_usb_2_0_extension_descriptor(libusb_context *ctx, struct libusb_bos_dev_capability_descriptor *dev_cap,
						   struct libusb_usb_2_0_extension_descriptor **ext)
{
	(void)ctx; (void)dev_cap; (void)ext;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT void libusb_free_usb_2_0_extension_descriptor(struct libusb_usb_2_0_extension_descriptor *ext) { free(ext); }
EXPORT int libusb_get_ss_usb_device_capability_descriptor(libusb_context *ctx, struct libusb_bos_dev_capability_descriptor *dev_cap,
							  struct libusb_ss_usb_device_capability_descriptor **cap)
{
	(void)ctx; (void)dev_cap; (void)cap;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT void libusb_free_ss_usb_device_capability_descriptor(struct libusb_ss_usb_device_capability_descriptor *cap) { free(cap); }
EXPORT int libusb_get_container_id_descriptor(libusb_context *ctx, struct libusb_bos_dev_capability_descriptor *dev_cap,
					      struct libusb_container_id_descriptor **container_id)
{
	(void)ctx; (void)dev_cap; (void)container_id;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}
EXPORT void libusb_free_container_id_descriptor(struct libusb_container_id_descriptor *container_id) { free(container_id); }
