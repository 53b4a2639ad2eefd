// A listen URL's port is checked before the member touches its data dir, so
// a port already in use ends the start with one clear line.
#pragma once

#include <string>

#include "base/status.h"

namespace etcdpp::cmd {

// Binds (and closes) a socket on host_port ("127.0.0.1:2379", "[::1]:2379",
// "0.0.0.0:2379") for the URL `url`. Fails with the URL and the OS's reason.
//
// The probe does not set SO_REUSEPORT, unlike gRPC's own listeners: with it,
// a second server on a port another server holds would bind too, and clients
// would reach one or the other at random. SO_REUSEADDR is set, as gRPC sets
// it, so a port left in TIME_WAIT by a previous run is not refused.
Status CheckCanListen(const std::string& url, const std::string& host_port);

// CheckCanListen for every URL the member is about to listen on: the client
// URLs, and the peer URLs when --initial-cluster names more than one member
// (a single member does not listen for peers). Flag values as given.
Status CheckListenUrls(const std::string& listen_client_urls, const std::string& listen_peer_urls,
                       const std::string& initial_cluster);

}  // namespace etcdpp::cmd
