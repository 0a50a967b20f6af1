from lrtrack.cli import main

main()
