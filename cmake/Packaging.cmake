# Where `cmake --install` puts etcdpp, and the Debian package made from that
# layout by `cpack -G DEB` (scripts/package.sh builds a Release tree and runs
# it): etcdpp_<version>_<arch>.deb with the three programs, the systemd unit,
# /etc/default/etcdpp and the man pages.
#
# The unit and the defaults file live outside the install prefix (/lib, /etc)
# because that is where systemd and Debian look for them.

include(GNUInstallDirs)

install(TARGETS etcdpp etcdppctl etcdpp-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/packaging/etcdpp.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/etcdpp.default DESTINATION /etc/default
        RENAME etcdpp)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)
install(FILES ${PROJECT_SOURCE_DIR}/NOTICE DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Man pages are installed gzipped, as Debian policy asks. Compressed at
# configure time (no build step, so `cpack` on any configured tree has them);
# -n keeps the name and time out of the header, so the output is reproducible.
find_program(ETCDPP_GZIP gzip REQUIRED)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/man)
foreach(page etcdpp.1 etcdppctl.1)
  set(source ${PROJECT_SOURCE_DIR}/packaging/${page})
  set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${source})
  execute_process(COMMAND ${ETCDPP_GZIP} -9nc ${source}
                  OUTPUT_FILE ${CMAKE_BINARY_DIR}/man/${page}.gz COMMAND_ERROR_IS_FATAL ANY)
  install(FILES ${CMAKE_BINARY_DIR}/man/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME etcdpp)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "etcdpp maintainers <etcdpp@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "distributed key-value store speaking etcd's v3 API")
set(CPACK_PACKAGE_DESCRIPTION
    "etcdpp is a strongly consistent, replicated key-value store written in C++.
It speaks etcd 3.4's gRPC API, so etcdctl and etcd's client libraries work with
it unchanged. This package ships the server (etcdpp, started by etcdpp.service
with settings from /etc/default/etcdpp), the command-line client etcdppctl and
the load generator etcdpp-bench.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # etcdpp_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends is computed by dpkg-shlibdeps from the libraries the programs link
# (gRPC, protobuf, LMDB, OpenSSL, ...), so it cannot drift from the build.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "etcd-client")
# Debug information stays in the build tree; the package ships stripped programs.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# An edited /etc/default/etcdpp survives upgrades and is removed only by purge.
file(WRITE ${CMAKE_BINARY_DIR}/packaging/conffiles "/etc/default/etcdpp\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/packaging/conffiles)
include(CPack)
