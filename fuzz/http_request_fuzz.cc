// libFuzzer target for what the client port does with a connection's bytes
// before any gRPC call: the protocol sniff, Beast's HTTP/1.1 request parser
// (with the listener's limits), the route lookup, the splitting of a body
// into JSON values and their decoding into the route's request message (the
// JSON gateway). Must never crash, hang or touch memory out of bounds; a
// request the decoder accepts must serialize to bytes that parse back as the
// request type.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>

#include "etcdserverpb/rpc.pb.h"
#include "http/gateway_codec.h"
#include "http/json_stream.h"
#include "http/sniff.h"

namespace bhttp = boost::beast::http;

namespace {

void DecodeBody(const etcdpp::http::Route& route, const std::string& body) {
  etcdpp::http::JsonValueSplitter splitter(1 << 16);
  // Fed in uneven pieces, as a body arrives from the network.
  for (size_t i = 0; i < body.size(); i += 7) splitter.Append(std::string_view(body).substr(i, 7));
  int values = 0;
  auto decode = [&](const std::string& json) {
    std::string serialized;
    if (!etcdpp::http::JsonToRequest(route, json, &serialized).ok()) return;
    auto* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(route.request);
    std::unique_ptr<google::protobuf::Message> back(prototype->New());
    if (!back->ParseFromString(serialized)) std::abort();
  };
  while (auto value = splitter.Next()) {
    decode(*value);
    if (++values > 64) return;
  }
  if (auto rest = splitter.TakeRest()) decode(*rest);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)etcdserverpb::RangeRequest::descriptor();  // links the descriptors the routes use
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)etcdpp::http::Classify(bytes.substr(0, etcdpp::http::kHttp2Preface.size()));

  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t offset = 0;
  while (offset < size && !parser.is_done()) {
    const size_t used = parser.put(boost::asio::buffer(data + offset, size - offset), ec);
    if (ec && ec != bhttp::error::need_more) return 0;
    if (used == 0) break;
    offset += used;
  }
  if (!parser.is_done()) return 0;
  const auto& req = parser.get();
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  const etcdpp::http::Route* route = etcdpp::http::FindRoute(path);
  if (route == nullptr && etcdpp::http::IsGatewayPath(path)) {
    route = etcdpp::http::FindRoute("/v3/kv/txn");  // the deepest request message
  }
  if (route != nullptr) DecodeBody(*route, req.body());
  return 0;
}
