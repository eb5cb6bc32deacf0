# Run by `cmake --install` (see deploy/install.cmake) with the install-time
# CMAKE_INSTALL_PREFIX: the files whose place or content depends on it.
# With prefix /usr: config in /etc, unit in systemd's own unit directory; otherwise
# PREFIX/etc and PREFIX/lib/systemd/system (which systemd also reads).
set(prefix "${CMAKE_INSTALL_PREFIX}")
set(destdir "$ENV{DESTDIR}")
if(prefix STREQUAL "/usr")
  set(confdir "/etc/poolkeeper")
  set(unitdir "${PK_SYSTEMD_UNITDIR_USR}")
  set(sysusersdir "${PK_SYSUSERSDIR_USR}")
else()
  set(confdir "${prefix}/etc/poolkeeper")
endif()
if(NOT unitdir)
  set(unitdir "${prefix}/lib/systemd/system")
endif()
if(NOT sysusersdir)
  set(sysusersdir "${prefix}/lib/sysusers.d")
endif()

function(pk_link target link)
  get_filename_component(dir "${link}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  file(REMOVE "${link}")
  file(CREATE_LINK "${target}" "${link}" RESULT rc SYMBOLIC)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "cannot link ${link} -> ${target}: ${rc}")
  endif()
  message(STATUS "Installing: ${link} -> ${target}")
endfunction()

foreach(alias pool depool drain ispooled)
  pk_link(poolctl "${destdir}${prefix}/${PK_BINDIR}/${alias}")
  pk_link(poolctl.8 "${destdir}${prefix}/${PK_MANDIR}/man8/${alias}.8")
  pk_link(poolctl "${destdir}${prefix}/${PK_DATADIR}/bash-completion/completions/${alias}")
endforeach()

# The unit as shipped names /usr/sbin and /etc/poolkeeper.
file(READ "${PK_SOURCE_DIR}/deploy/systemd/poolkeeper.service" unit)
string(REPLACE "/usr/sbin/poolkeeper" "${prefix}/${PK_SBINDIR}/poolkeeper" unit "${unit}")
string(REPLACE "/etc/poolkeeper/" "${confdir}/" unit "${unit}")
file(WRITE "${PK_BINARY_DIR}/deploy/poolkeeper.service" "${unit}")
file(GLOB sockets "${PK_SOURCE_DIR}/deploy/systemd/*.socket")
file(INSTALL "${PK_BINARY_DIR}/deploy/poolkeeper.service" ${sockets} DESTINATION "${unitdir}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${PK_SOURCE_DIR}/deploy/sysusers.d/poolkeeper.conf" DESTINATION "${sysusersdir}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

if(EXISTS "${destdir}${confdir}/poolkeeper.toml")
  message(STATUS "Keeping: ${destdir}${confdir}/poolkeeper.toml (an existing config is never overwritten)")
else()
  file(INSTALL "${PK_SOURCE_DIR}/deploy/etc/poolkeeper.toml" DESTINATION "${confdir}"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
