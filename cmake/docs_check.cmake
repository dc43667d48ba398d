# Fails the `docs` target when Doxygen found a public function without a
# documentation comment (its warnings for undocumented functions, from
# WARN_LOGFILE). Other warnings (undocumented struct fields, enum values,
# macros) are printed but do not fail.
#   cmake -DLOG=<warnings.log> -P docs_check.cmake
file(STRINGS ${LOG} lines)
set(undocumented "")
foreach(line IN LISTS lines)
  if(line MATCHES "warning: Member (tn_[a-z0-9_]+)\\(.*\\(function\\).* is not documented")
    list(APPEND undocumented "${line}")
  endif()
endforeach()
list(LENGTH lines nwarn)
list(LENGTH undocumented nfun)
message(STATUS "Doxygen: ${nwarn} warning line(s), ${nfun} undocumented public function(s)")
if(nfun GREATER 0)
  list(JOIN undocumented "\n" text)
  message(FATAL_ERROR "public functions without a documentation comment:\n${text}")
endif()
