/*
 * Opens a UDP socket bound to one network interface (SO_BINDTODEVICE) and
 * returns its file descriptor, which Node's dgram adopts with bind({ fd }).
 *
 * Why: a DHCP server must answer only on its provisioning interface, but a
 * socket bound to 0.0.0.0:67 receives broadcasts from every interface and
 * Node's dgram cannot tell which one a datagram came in on (no IP_PKTINFO).
 * Binding the socket to the device makes the kernel deliver only that
 * interface's packets and send replies out of it, as dnsmasq's
 * --bind-interfaces and ISC dhcpd do.
 */
#include <node_api.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <stdio.h>

static napi_value throw_errno(napi_env env, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* openBoundUdpSocket(ifname: string, address: string, port: number): number */
static napi_value open_bound_udp_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "openBoundUdpSocket(ifname, address, port)");
    return NULL;
  }
  char ifname[IFNAMSIZ + 1] = {0};
  char address[64] = {0};
  size_t len = 0;
  int32_t port = 0;
  if (napi_get_value_string_utf8(env, argv[0], ifname, sizeof ifname, &len) != napi_ok || len == 0 || len >= IFNAMSIZ) {
    napi_throw_type_error(env, NULL, "ifname must be a non-empty interface name shorter than 16 bytes");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[1], address, sizeof address, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "address must be a string");
    return NULL;
  }
  if (napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535) {
    napi_throw_type_error(env, NULL, "port must be 0..65535");
    return NULL;
  }

  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, address, &sin.sin_addr) != 1) {
    napi_throw_type_error(env, NULL, "address must be an IPv4 address");
    return NULL;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0) {
    int saved = errno; close(fd); errno = saved;
    return throw_errno(env, "setsockopt");
  }
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0) {
    int saved = errno; close(fd); errno = saved;
    return throw_errno(env, "SO_BINDTODEVICE");
  }
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    int saved = errno; close(fd); errno = saved;
    return throw_errno(env, "bind");
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "openBoundUdpSocket", NAPI_AUTO_LENGTH, open_bound_udp_socket, NULL, &fn);
  napi_set_named_property(env, exports, "openBoundUdpSocket", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
