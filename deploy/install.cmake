# What `cmake --install` (and the Debian package) puts where: the agent in sbin, poolctl
# with its conftool-style links in bin, the unit (its paths rewritten to the prefix), the
# config (only when none exists: an operator's file is never overwritten), the
# sysusers.d entry for the user and groups, docs, examples, alert rules, dashboard, man pages and bash
# completion. Paths follow the prefix given at install time (`--prefix`); every step
# that fails makes the install fail.
pkg_get_variable(PK_SYSTEMD_UNITDIR_USR systemd systemdsystemunitdir)
pkg_get_variable(PK_SYSUSERSDIR_USR systemd sysusersdir)

# The daemon in sbin; poolctl and its links in bin, on every user's PATH (Debian 12
# leaves sbin out of a normal user's), as conftool's host commands are: anyone may read
# the status, members of poolkeeper-admins may pool and depool.
install(TARGETS poolkeeper RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS poolctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY deploy/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# Alert rules (with their promtool tests) and the Grafana dashboard, for the monitoring hosts.
install(FILES deploy/prometheus/poolkeeper.yaml deploy/prometheus/poolkeeper_test.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/prometheus)
install(FILES deploy/grafana/poolkeeper.json DESTINATION ${CMAKE_INSTALL_DOCDIR}/grafana)
install(FILES deploy/man/poolkeeper.8 deploy/man/poolctl.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES deploy/bash-completion/poolctl DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

install(CODE "
  set(PK_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
  set(PK_BINARY_DIR \"${CMAKE_BINARY_DIR}\")
  set(PK_SBINDIR \"${CMAKE_INSTALL_SBINDIR}\")
  set(PK_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(PK_MANDIR \"${CMAKE_INSTALL_MANDIR}\")
  set(PK_DATADIR \"${CMAKE_INSTALL_DATADIR}\")
  set(PK_SYSTEMD_UNITDIR_USR \"${PK_SYSTEMD_UNITDIR_USR}\")
  set(PK_SYSUSERSDIR_USR \"${PK_SYSUSERSDIR_USR}\")
  include(\"${CMAKE_SOURCE_DIR}/deploy/install_files.cmake\")
")
