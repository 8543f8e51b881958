/** W1py on swarmnet: W1's gateway, the Python client. */
export { server } from "../w1-ping/swarmnet.js";
export { pingClient as client } from "./workload.js";
