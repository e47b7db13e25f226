package ctrl

import (
	"errors"
	"fmt"
	"strconv"
)

// Result codes a request can finish with (Device OS system_error_t, the names
// particle-usb src/result.js gives them where it has one). A request's result
// is the device's verdict; the transport may have worked perfectly.
const (
	CodeOK              int32 = 0
	CodeError           int32 = -100
	CodeBusy            int32 = -110
	CodeNotSupported    int32 = -120
	CodeNotAllowed      int32 = -130
	CodeCancelled       int32 = -140
	CodeAborted         int32 = -150
	CodeTimeout         int32 = -160
	CodeNotFound        int32 = -170
	CodeAlreadyExists   int32 = -180
	CodeTooLarge        int32 = -190
	CodeNotEnoughData   int32 = -191
	CodeLimitExceeded   int32 = -200
	CodeEndOfStream     int32 = -201
	CodeInvalidState    int32 = -210
	CodeFlashIO         int32 = -219
	CodeIOError         int32 = -220
	CodeWouldBlock      int32 = -221
	CodeFile            int32 = -225
	CodeNetworkError    int32 = -230
	CodeProtocolError   int32 = -240
	CodeInternalError   int32 = -250
	CodeNoMemory        int32 = -260
	CodeInvalidArgument int32 = -270
	CodeBadData         int32 = -280
	CodeOutOfRange      int32 = -290
	CodeDeprecated      int32 = -300

	CodeOTAModuleNotFound      int32 = -1300
	CodeOTAUnsupportedModule   int32 = -1310
	CodeOTAValidationFailed    int32 = -1320
	CodeOTAIntegrityFailed     int32 = -1330
	CodeOTAResumedUpdateFailed int32 = -1331
	CodeOTADependencyFailed    int32 = -1340
	CodeOTAInvalidAddress      int32 = -1350
	CodeOTAInvalidSize         int32 = -1351
	CodeOTAInvalidPlatform     int32 = -1360
	CodeOTAInvalidFormat       int32 = -1370
	CodeOTAUpdatesDisabled     int32 = -1380
	CodeOTA                    int32 = -1390

	CodeDeviceProtected  int32 = -1801
	CodeKeyMismatch      int32 = -1802
	CodeInvalidSignature int32 = -1803
)

type resultInfo struct{ name, msg string }

// resultTable is system_error_t as of Device OS 6.x (services/inc/system_error.h)
// plus the device-protection codes particle-usb knows.
var resultTable = map[int32]resultInfo{
	0:     {"OK", "Operation succeeded"},
	-100:  {"ERROR", "Unknown error"},
	-110:  {"BUSY", "Resource busy"},
	-120:  {"NOT_SUPPORTED", "Not supported"},
	-130:  {"NOT_ALLOWED", "Not allowed"},
	-140:  {"CANCELLED", "Operation cancelled"},
	-150:  {"ABORTED", "Operation aborted"},
	-160:  {"TIMEOUT", "Timeout error"},
	-170:  {"NOT_FOUND", "Not found"},
	-180:  {"ALREADY_EXISTS", "Already exists"},
	-190:  {"TOO_LARGE", "Too large data"},
	-191:  {"NOT_ENOUGH_DATA", "Not enough data"},
	-200:  {"LIMIT_EXCEEDED", "Limit exceeded"},
	-201:  {"END_OF_STREAM", "End of stream"},
	-210:  {"INVALID_STATE", "Invalid state"},
	-219:  {"FLASH_IO", "Flash IO error"},
	-220:  {"IO_ERROR", "IO error"},
	-221:  {"WOULD_BLOCK", "Would block"},
	-225:  {"FILE", "File error"},
	-230:  {"NETWORK_ERROR", "Network error"},
	-240:  {"PROTOCOL_ERROR", "Protocol error"},
	-250:  {"INTERNAL_ERROR", "Internal error"},
	-260:  {"NO_MEMORY", "Memory allocation error"},
	-270:  {"INVALID_ARGUMENT", "Invalid argument"},
	-280:  {"BAD_DATA", "Invalid data format"},
	-290:  {"OUT_OF_RANGE", "Out of range"},
	-300:  {"DEPRECATED", "Deprecated"},
	-400:  {"SARA_NCP_FW_UPDATE_QUALIFY_FLAGS", "Qualify flags"},
	-405:  {"SARA_NCP_FW_UPDATE_CLOUD_CONNECT_ON_ENTRY_TIMEOUT", "Cloud conn. on entry timeout"},
	-410:  {"SARA_NCP_FW_UPDATE_PUBLISH_START", "Publish start err"},
	-415:  {"SARA_NCP_FW_UPDATE_SETUP_CELLULAR_STILL_CONNECTED", "Setup cell still conn."},
	-420:  {"SARA_NCP_FW_UPDATE_SETUP_CELLULAR_CONNECT_TIMEOUT", "Setup cell conn. timeout"},
	-430:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_1", "HTTPS err 1"},
	-431:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_2", "HTTPS err 2"},
	-432:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_3", "HTTPS err 3"},
	-433:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_4", "HTTPS err 4"},
	-434:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_5", "HTTPS err 5"},
	-435:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_6", "HTTPS err 6"},
	-436:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_7", "HTTPS err 7"},
	-437:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_8", "HTTPS err 8"},
	-438:  {"SARA_NCP_FW_UPDATE_HTTPS_SETUP_9", "HTTPS err 9"},
	-440:  {"SARA_NCP_FW_UPDATE_DOWNLOAD_RETRY_MAX", "DL retry max err"},
	-445:  {"SARA_NCP_FW_UPDATE_START_INSTALL_TIMEOUT", "Install start timeout"},
	-450:  {"SARA_NCP_FW_UPDATE_INSTALL_AT_ERROR", "Install AT err"},
	-455:  {"SARA_NCP_FW_UPDATE_SAME_VERSION", "Same version err"},
	-460:  {"SARA_NCP_FW_UPDATE_INSTALL_TIMEOUT", "Install timeout"},
	-465:  {"SARA_NCP_FW_UPDATE_POWER_OFF_TIMEOUT", "Power off timeout"},
	-470:  {"SARA_NCP_FW_UPDATE_CLOUD_CONNECT_ON_EXIT_TIMEOUT", "Cloud conn. on exit timeout"},
	-475:  {"SARA_NCP_FW_UPDATE_PUBLISH_RESULT", "Publish result err"},
	-1000: {"COAP", "CoAP error"},
	-1100: {"COAP_4XX", "CoAP: 4xx"},
	-1132: {"COAP_5XX", "CoAP: 5xx"},
	-1200: {"AT_NOT_OK", "AT command failure"},
	-1210: {"AT_RESPONSE_UNEXPECTED", "Failed to parse AT response"},
	-1300: {"OTA_MODULE_NOT_FOUND", "Module not found"},
	-1310: {"OTA_UNSUPPORTED_MODULE", "Unsupported module"},
	-1320: {"OTA_VALIDATION_FAILED", "Module validation failed"},
	-1330: {"OTA_INTEGRITY_CHECK_FAILED", "Module integrity check failed"},
	-1331: {"OTA_RESUMED_UPDATE_FAILED", "Resumed update failed"},
	-1340: {"OTA_DEPENDENCY_CHECK_FAILED", "Module dependency check failed"},
	-1350: {"OTA_INVALID_ADDRESS", "Invalid module address"},
	-1351: {"OTA_INVALID_SIZE", "Invalid module size"},
	-1360: {"OTA_INVALID_PLATFORM", "Invalid module platform"},
	-1370: {"OTA_INVALID_FORMAT", "Invalid module format"},
	-1380: {"OTA_UPDATES_DISABLED", "Firmware updates are disabled"},
	-1390: {"OTA", "Firmware update error"},
	-1400: {"CRYPTO", "Crypto error"},
	-1600: {"I2C_BUS_BUSY", "Bus busy"},
	-1601: {"I2C_ARBITRATION_FAILED", "Arbitration failed"},
	-1602: {"I2C_TX_ADDR_TIMEOUT", "Send slave address timeout"},
	-1603: {"I2C_FILL_DATA_TIMEOUT", "Fill data timeout"},
	-1604: {"I2C_TX_DATA_TIMEOUT", "Send data timeout"},
	-1605: {"I2C_STOP_TIMEOUT", "Send stop timeout"},
	-1606: {"I2C_ABORT", "I2C transmission abort"},
	-1700: {"PPP_PARAM", "Invalid parameter"},
	-1701: {"PPP_OPEN", "Unable to open PPP session"},
	-1702: {"PPP_DEVICE", "Invalid I/O device for PPP"},
	-1703: {"PPP_ALLOC", "Unable to allocate resources"},
	-1704: {"PPP_USER", "User interrupt"},
	-1705: {"PPP_CONNECT", "Connection lost"},
	-1706: {"PPP_AUTH_FAIL", "Failed authentication challenge"},
	-1707: {"PPP_PROTOCOL", "Failed to meet protocol"},
	-1708: {"PPP_PEER_DEAD", "Connection timeout"},
	-1709: {"PPP_IDLE_TIMEOUT", "Idle timeout"},
	-1710: {"PPP_CONNECT_TIME", "Max connect time reached"},
	-1711: {"PPP_LOOPBACK", "Loopback detected"},
	-1712: {"PPP_NO_CARRIER_IN_NETWORK_PHASE", "Received NO CARRIER in network phase"},
	-1800: {"INVALID_SERVER_SETTINGS", "Server settings are invalid"},
	-1801: {"DEVICE_PROTECTED", "Device is protected"},
	-1802: {"KEY_MISMATCH", "Unrecognized cryptographic key"},
	-1803: {"INVALID_SIGNATURE", "Signature validation failed"},
}

// ResultName names a result code so people and logs see "INVALID_STATE"
// rather than a bare number; unknown codes become "RESULT_<n>".
func ResultName(code int32) string {
	if r, ok := resultTable[code]; ok {
		return r.name
	}
	return "RESULT_" + strconv.Itoa(int(code))
}

// ResultMessage is Device OS's own one-line description of a code, for UIs
// that want words rather than the constant name.
func ResultMessage(code int32) string {
	if r, ok := resultTable[code]; ok {
		return r.msg
	}
	return "Request error"
}

// ResultError is a request the transport delivered and the device answered
// with a negative result. It is separate from transport errors because the
// remedy differs: a refused request will be refused again unless something
// about the device or the image changes.
type ResultError struct {
	// Code is the device's result (system_error_t).
	Code int32
	// Op says what was being attempted, e.g. "device refused the update".
	Op string
}

// Error reads "<Op>: <NAME> (<code>)", e.g. "device refused the update:
// INVALID_STATE (-210)", so the code is recognisable in logs and reports.
func (e *ResultError) Error() string {
	op := e.Op
	if op == "" {
		op = "device returned an error"
	}
	return fmt.Sprintf("%s: %s (%d)", op, ResultName(e.Code), e.Code)
}

// Name is the result code's name (ResultName(e.Code)).
func (e *ResultError) Name() string { return ResultName(e.Code) }

// AsResultError finds the device's result in an error chain, so callers can
// branch on Code without string matching.
func AsResultError(err error) (*ResultError, bool) {
	var re *ResultError
	ok := errors.As(err, &re)
	return re, ok
}
