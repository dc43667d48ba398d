# Fails when a documented code example differs from its file: the document
# (README.md, or the page of docs/ the example lives in) shows
# examples/NAME.c verbatim between <!-- example: NAME --> and
# <!-- /example -->, inside a ```c fence.
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
get_filename_component(doc ${README} NAME)
string(REGEX MATCH "<!-- example: ${NAME} -->\n```c\n([^`]*)```\n<!-- /example -->" _ "${readme}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "${README} has no block <!-- example: ${NAME} -->")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL example)
  message(FATAL_ERROR "${doc}'s example ${NAME} differs from ${EXAMPLE}")
endif()
message(STATUS "${doc} example ${NAME} matches ${EXAMPLE}")
