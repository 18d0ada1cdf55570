// listen.c -- interposes bind(2) to give the mock brokers fixed ports.
//
// The executable's bind() is the one librdkafka's calls resolve to (the
// executable comes first in the dynamic symbol lookup), so while a port is
// set every IPv4 bind to port 0 -- only the mock brokers' listeners do
// that here -- gets the next port, with SO_REUSEADDR so a restart after
// kill -9 binds despite the old connections in TIME_WAIT. Everything else
// goes to the system call unchanged. No _GNU_SOURCE: glibc then declares
// bind() with a plain const struct sockaddr *.
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "listen.h"

static atomic_int next_port;

void
listen_ports_from(int port)
{
	atomic_store(&next_port, port > 0 && port < 65536 ? port : 0);
}

int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_in sin;
	int                port = atomic_load(&next_port);
	if (port > 0 && addr != NULL && addr->sa_family == AF_INET
	    && len >= (socklen_t) sizeof(sin)) {
		memcpy(&sin, addr, sizeof(sin));
		if (sin.sin_port == 0) {
			int on = 1;
			atomic_store(&next_port, port + 1);
			sin.sin_port = htons((uint16_t) port);
			setsockopt(
			    fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
			return (int) syscall(SYS_bind, fd, &sin, sizeof(sin));
		}
	}
	return (int) syscall(SYS_bind, fd, addr, len);
}
