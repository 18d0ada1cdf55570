// listen.h -- fixed listener ports for the mock cluster's brokers.
#ifndef DRE_BROKER_LISTEN_H
#define DRE_BROKER_LISTEN_H

// listen_ports_from makes the next IPv4 port-0 binds of this process take
// port, port + 1, ... instead of a kernel-chosen port (0 = off again).
// librdkafka's mock cluster (2.0.2) binds its brokers' listeners to
// 127.0.0.1:0 and has no setting for the port; a broker restarted on the
// same address is what lets running clients find the new cluster.
void listen_ports_from(int port);

#endif
