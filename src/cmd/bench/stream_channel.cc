#include "cmd/bench/stream_channel.h"

namespace etcdpp::bench {

std::string StripScheme(const std::string& endpoint) {
  const size_t p = endpoint.find("://");
  return p == std::string::npos ? endpoint : endpoint.substr(p + 3);
}

std::shared_ptr<grpc::Channel> ConnectOwnChannel(
    const std::string& endpoint, const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(
      StripScheme(endpoint), creds != nullptr ? creds : grpc::InsecureChannelCredentials(), args);
}

}  // namespace etcdpp::bench
