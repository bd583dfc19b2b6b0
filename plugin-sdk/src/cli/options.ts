// Options several commands share.
import { Option } from 'commander'

export const jsonOption = () => new Option('--json', 'machine-readable output on stdout')
export const dirOption = () => new Option('-d, --dir <dir>', 'plugin directory (default: current directory)')
