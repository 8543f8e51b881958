/** W3apy on swarmnet: W3a's gateway (subroutine `items`), the Python client. */
export { server } from "../w3-stream/swarmnet.js";
export { streamClient as client } from "./workload.js";
