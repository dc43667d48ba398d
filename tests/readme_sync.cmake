# Fails when a README code example differs from its file: the README shows
# examples/NAME.c verbatim between <!-- example: NAME --> and
# <!-- /example -->, inside a ```c fence.
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(REGEX MATCH "<!-- example: ${NAME} -->\n```c\n([^`]*)```\n<!-- /example -->" _ "${readme}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "README.md has no block <!-- example: ${NAME} -->")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL example)
  message(FATAL_ERROR "README.md's example ${NAME} differs from ${EXAMPLE}")
endif()
message(STATUS "README example ${NAME} matches ${EXAMPLE}")
